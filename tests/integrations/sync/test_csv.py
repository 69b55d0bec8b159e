"""CSV import (CLI and API job) with per-row errors, and CSV export (streamed, CLI and API)."""

import csv
import io

from sqlalchemy import func, select

from cmdb.models import ConfigurationItem
from relations.models import Relationship

HEADER = "name,ci_class,external_id,criticality,attributes.hostname,attributes.cpu_cores,attributes.ip_addresses\n"
ROWS = (
    'web-1,server,w1,high,web-1,8,"[""10.0.0.1""]"\n'
    "bad-class,spaceship,w2,,,,\n"
    "bad-cores,server,w3,,,many,\n"
    "web-4,server,w4,,web-4,,\n"
)


def _count(db):
    return db.session.scalar(select(func.count()).select_from(ConfigurationItem))


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_cli_import_dry_run_errors_report_and_reimport(app, db, tmp_path):
    path = tmp_path / "cis.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    before = _count(db)
    dry = _cli(app, "import", "cis", str(path), "--source", "cmdbx", "--dry-run")
    assert dry.exit_code == 2 and "dry run" in dry.output and "created 2" in dry.output
    assert _count(db) == before
    result = _cli(app, "import", "cis", str(path), "--source", "cmdbx")
    assert result.exit_code == 2, result.output
    assert "created 2" in result.output and "error 2" in result.output
    with open(f"{path}.errors.csv", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [r["row"] for r in report] == ["3", "4"]  # the header is row 1
    assert "ci_class" in report[0]["errors"] and "cpu_cores" in report[1]["errors"]
    web = db.session.scalar(select(ConfigurationItem).where(ConfigurationItem.name == "web-1"))
    assert web.criticality == "high" and web.attributes == {
        "hostname": "web-1",
        "cpu_cores": 8,
        "ip_addresses": ["10.0.0.1"],
    }
    assert [(e.source, e.external_id) for e in web.external_ids] == [("cmdbx", "w1")]
    again = _cli(app, "import", "cis", str(path), "--source", "cmdbx")
    assert "unchanged 2" in again.output and _count(db) == before + 2


def test_bad_files_change_nothing(app, db, tmp_path):
    before = _count(db)
    cases = {
        "header.csv": (b"name,ci_class,colour\nx,server,red\n", "unknown columns: colour"),
        "latin1.csv": ("name,ci_class\ncaf\xe9,server\n".encode("latin-1"), "not UTF-8"),
        "huge.csv": (b"name,ci_class,description\nx,server," + b"a" * (10 * 1024 * 1024) + b"\n", "field larger"),
        "ragged.csv": (b"name,ci_class\nx,server,extra\n", "has 3 cells, the header 2"),
        "empty.csv": (b"", "empty"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = _cli(app, "import", "cis", str(path))
        assert result.exit_code == 1 and message.lower() in result.output.lower(), (name, result.output)
    assert _count(db) == before


def test_relationships_import_by_external_id(app, db, make, tmp_path):
    app_ci = make.ci("application", name="payroll", external_ids=[{"source": "sn", "external_id": "a1"}])
    server = make.ci("server", name="srv", external_ids=[{"source": "sn", "external_id": "s1"}])
    path = tmp_path / "rels.csv"
    path.write_text(
        "source_external_id,type,target_external_id,target_id\n"
        "a1,runs_on,s1,\n"
        "a1,runs_on,missing,\n"
        f"a1,depends_on,,{server.id}\n",
        encoding="utf-8",
    )
    result = _cli(app, "import", "relationships", str(path), "--source", "sn")
    assert "created 2" in result.output and "error 1" in result.output, result.output
    types = set(db.session.scalars(select(Relationship.type).where(Relationship.source_id == app_ci.id)))
    assert types == {"runs_on", "depends_on"}


def test_api_import_job_and_csv_export(db, client, make, app, tmp_path):
    headers = make.headers("integration")
    csv_headers = {**headers, "Content-Type": "text/csv"}
    response = client.post("/api/v1/imports/cis?source=erp", headers=csv_headers, data=HEADER + ROWS)
    assert response.status_code == 202, response.json
    job = client.get(f"/api/v1/imports/{response.json['id']}", headers=headers).json
    assert job["status"] == "done" and job["counts"]["created"] == 2 and job["counts"]["error"] == 2
    assert [r["row"] for r in job["results"]] == [3, 4]
    wrong = client.post("/api/v1/imports/cis", headers=csv_headers, data="nom,classe\nx,y\n")
    assert wrong.status_code == 422 and "header" in wrong.json["errors"]
    assert client.post("/api/v1/imports/cis", headers=headers, json={"a": 1}).status_code == 415
    exported = client.get("/api/v1/cis", headers=headers, query_string={"format": "csv", "ci_class": "server"})
    assert exported.status_code == 200 and exported.mimetype == "text/csv" and exported.is_streamed
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    web = next(r for r in rows if r["name"] == "web-1")
    assert web["external_ids"] == "erp:w1" and web["attributes.cpu_cores"] == "8"
    assert web["attributes.ip_addresses"] == '["10.0.0.1"]' and "attributes.is_hypervisor" in web
    out = tmp_path / "out.csv"
    result = _cli(app, "export", "cis", "--ci-class", "server", "-o", str(out))
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as handle:
        assert sorted(r["name"] for r in csv.DictReader(handle)) == sorted(r["name"] for r in rows)
