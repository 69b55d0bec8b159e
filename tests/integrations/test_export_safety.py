"""Files the service writes for other programs: no CSV cell runs as a spreadsheet formula (and an
exported file imports back unchanged), and GraphML, XLSX, SVG charts and DOT stay readable whatever
a name holds (control characters, U+FFFE, quotes, line breaks)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from cairn.safe_output import FORMULA_START, csv_cell, csv_value

# name as stored -> the cell a CSV must hold
FORMULAS = {
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "@SUM(1+1)": "'@SUM(1+1)",
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "\tTAB": "'\tTAB",
    "\rCR": "'\rCR",
    "'=quoted already": "''=quoted already",
    "-12.50": "-12.50",  # a plain number: a spreadsheet reads it as a number, runs nothing
    "plain name": "plain name",
}
# Nothing XML 1.0 can carry (C0 controls, U+FFFE, U+FFFF) next to what it must escape or keep.
NASTY = "bad\x01\x0b\ufffe\uffff<&>\"'\r\n\tname"
NASTY_AS_XML_READS_IT = "bad\ufffd\ufffd\ufffd\ufffd<&>\"'\r\n\tname"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(list(FORMULAS)))
def test_csv_cells_never_start_a_formula_and_read_back_unchanged(text):
    cell = csv_cell(text)
    assert csv_value(cell) == text
    if cell.startswith(FORMULA_START):
        assert cell == text and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell)


def test_ci_csv_export_neutralises_formulas_and_imports_back(client, admin, make, db):
    from cmdb.models import ConfigurationItem
    from integrations import csvio

    for name in FORMULAS:
        make.ci("server", name=name)
    response = client.get("/api/v1/cis", headers=admin, query_string={"format": "csv", "page_size": 1000})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    cells = [row["name"] for row in csv.DictReader(io.StringIO(text, newline=""))]
    assert sorted(cells) == sorted(FORMULAS.values())

    # The exported file, imported again, makes CIs with the names as they were.
    report = csvio.import_cis(text, commit=False)
    assert report.counts["created"] == len(FORMULAS), report.errors
    names = db.session.scalars(select(ConfigurationItem.name)).all()
    assert sorted(names) == sorted([*FORMULAS, *FORMULAS])


def test_report_csv_and_xlsx_are_safe(client, admin, make):
    from openpyxl import load_workbook

    for n, name in enumerate([*FORMULAS, NASTY]):
        make.ci("laptop", name=name, asset_tag=f"SAFE-{n}", status="deployed", purchase_cost=Decimal("12.50"))
    text = client.get("/api/v1/reports/asset-register?format=csv", headers=admin).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    by_tag = {row["asset_tag"]: row for row in rows}
    assert [by_tag[f"SAFE-{n}"]["name"] for n in range(len(FORMULAS))] == list(FORMULAS.values())
    assert {row["purchase_cost"] for row in rows} == {"12.50"}

    xlsx = client.get("/api/v1/reports/asset-register?format=xlsx", headers=admin)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    values = list(sheet.values)
    header = values[1]
    names = {row[header.index("Asset tag")]: row[header.index("Name")] for row in values[2:]}
    assert names[f"SAFE-{len(FORMULAS)}"] == NASTY_AS_XML_READS_IT
    assert names["SAFE-0"] == "'=cmd|' /C calc'!A0"


def test_graphml_and_dot_stay_well_formed(client, admin, make):
    from relations.services import create_relationship

    server = make.ci("server", name=NASTY)
    vm = make.ci("virtual_machine", name='vm "one"\\two\rthree')
    create_relationship({"source_id": vm.id, "type": "runs_on", "target_id": server.id})
    make.db.session.commit()

    graphml = client.get(f"/api/v1/cis/{server.id}/graph?format=graphml&depth=1", headers=admin)
    assert graphml.status_code == 200
    root = ET.fromstring(graphml.data)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    labels = {node.get("id"): node.find("g:data[@key='label']", ns).text for node in root.findall(".//g:node", ns)}
    assert labels == {f"n{server.id}": NASTY_AS_XML_READS_IT, f"n{vm.id}": 'vm "one"\\two\rthree'}
    assert len(root.findall(".//g:edge", ns)) == 1

    dot = client.get(f"/api/v1/cis/{server.id}/graph?format=dot&depth=1", headers=admin).get_data(as_text=True)
    quoted = r'"(?:[^"\\\r\n]|\\.)*"'
    statement = re.compile(
        rf"  n\d+ \[label=(?P<label>{quoted})(, style=bold)?\];|  n\d+ -> n\d+ \[label={quoted}, id={quoted}\];"
    )
    lines = dot.split("\n")
    assert lines[0] == f'digraph "ci-{server.id}" {{' and lines[-2:] == ["}", ""]
    found = {}
    for line in lines[3:-2]:
        match = statement.fullmatch(line)
        assert match, repr(line)
        if match["label"]:
            found[line.split()[0]] = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], match["label"][1:-1])
    assert found == {
        f"n{server.id}": NASTY_AS_XML_READS_IT.replace("\r\n", "\n") + "\nserver",
        f"n{vm.id}": 'vm "one"\\two\nthree\nvirtual_machine',
    }


def test_svg_charts_stay_well_formed(client, admin, make):
    team = make.team(name="Ops\x01\ufffe")
    make.ci("laptop", name="chart-laptop", asset_tag="SVG-1", status="deployed", owner_team_id=team.id,
            purchase_cost=Decimal("1000"))  # fmt: skip
    svg = client.get("/api/v1/reports/cost-by-team.svg?as_of=2100-01-01", headers=admin)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "Ops\ufffd\ufffd" in ET.tostring(ET.fromstring(svg.data), encoding="unicode")
