"""Discovery: identification order, ambiguity, precedence and manual edits, sightings and the
stale-CIs report, installed software, dry runs, and large payloads as a job."""

from datetime import timedelta

from sqlalchemy import func, select, update

from cairn.audit.models import ChangeLog
from cairn.db import utcnow
from cmdb.models import ConfigurationItem
from integrations.sync.models import CISourceSeen
from relations.models import Relationship

RUNS = "/api/v1/discovery/runs"


def _run(client, headers, items, source="agent", **query):
    response = client.post(RUNS, headers=headers, json={"source": source, "items": items}, query_string=query)
    assert response.status_code in (201, 202), response.json
    return response.json


def _by_index(run):
    return {r["index"]: r for r in run["results"]}


def test_identification_order_and_ambiguity(db, client, make):
    headers = make.headers("integration")
    by_serial = make.ci("server", name="s1", vendor="Dell", serial_number="SN1", attributes={"hostname": "other"})
    by_mac = make.ci("server", name="s2", attributes={"mac_addresses": ["aa:bb:cc:00:00:01"]})
    by_fqdn = make.ci("server", name="s3", attributes={"fqdn": "db.example.com"})
    make.ci("server", name="d1", attributes={"hostname": "dup"})
    make.ci("virtual_machine", name="d2", attributes={"hostname": "dup"})
    items = [
        # the serial wins over a MAC that names another CI
        {"ci_class": "server", "serial_number": "SN1", "vendor": "dell", "mac_addresses": ["AA-BB-CC-00-00-01"]},
        {"ci_class": "server", "mac_addresses": ["aabb.cc00.0001"], "hostname": "x2"},
        {"ci_class": "server", "fqdn": "DB.example.com.", "hostname": "db"},
        {"ci_class": "server", "hostname": "dup"},
        {"ci_class": "server", "hostname": "brand-new", "ip_addresses": ["10.9.9.9"]},
        {"ci_class": "server"},
        {"ci_class": "spaceship", "hostname": "x"},
    ]
    cis_before, log_before = _count(db), _count(db, ChangeLog)
    dry = _run(client, headers, items, dry_run="true")
    assert _count(db) == cis_before and _count(db, ChangeLog) == log_before, "a dry run writes nothing"
    results = _by_index(dry)
    assert results[0]["ci_id"] == by_serial.id and results[0]["rule"] == "serial_number"
    assert results[1]["ci_id"] == by_mac.id and results[1]["rule"] == "mac_address"
    assert results[2]["ci_id"] == by_fqdn.id and results[2]["rule"] == "fqdn"
    assert results[3]["status"] == "ambiguous" and len(results[3]["matches"]) == 2
    assert results[3]["item"] == {"name": "dup", "hostname": "dup"}
    assert results[4]["status"] == "created" and "ci_id" not in results[4]
    assert results[5]["status"] == "error" and results[6]["status"] == "error"
    assert dry["counts"]["ambiguous"] == 1 and dry["counts"]["created"] == 1
    real = _run(client, headers, items)
    assert real["status"] == "done" and real["counts"]["created"] == 1 and real["counts"]["ambiguous"] == 1
    created = _by_index(real)[4]["ci_id"]
    ci = db.session.get(ConfigurationItem, created)
    assert ci.name == "brand-new" and ci.attributes["ip_addresses"] == ["10.9.9.9"]
    assert client.get(f"{RUNS}/{real['id']}", headers=headers).json["counts"] == real["counts"]
    # the same report again creates nothing more
    again = _run(client, headers, items)
    assert again["counts"].get("created", 0) == 0


def _count(db, model=ConfigurationItem):
    return db.session.scalar(select(func.count()).select_from(model))


def test_manual_edits_win_and_precedence_decides_between_sources(db, client, make, config):
    headers = make.headers("integration")
    item = {"ci_class": "server", "serial_number": "P1", "vendor": "HPE", "attributes": {"os_version": "1.0"}}
    ci_id = _by_index(_run(client, headers, [item]))[0]["ci_id"]
    # the agent owns the value it set: its next report changes it
    _run(client, headers, [{**item, "attributes": {"os_version": "1.1"}}])
    assert _attributes(client, headers, ci_id)["os_version"] == "1.1"
    # a person edits it: the agent no longer overwrites it
    client.patch(f"/api/v1/cis/{ci_id}", headers=headers, json={"attributes": {"os_version": "pinned"}})
    held = _run(client, headers, [{**item, "attributes": {"os_version": "1.2", "os": "Linux"}}])
    attributes = _attributes(client, headers, ci_id)
    assert attributes["os_version"] == "pinned" and attributes["os"] == "Linux"
    # the run says what it held back, for a person to settle (the discovery page)
    assert _by_index(held)[0]["held"] == {"attributes.os_version": "1.2"} and held["counts"]["held"] == 1
    config(CAIRN_DISCOVERY_MANUAL_WINS="false")
    _run(client, headers, [{**item, "attributes": {"os_version": "1.3"}}])
    assert _attributes(client, headers, ci_id)["os_version"] == "1.3"
    # sccm ranks above the agent for os_version
    config(CAIRN_DISCOVERY_PRECEDENCE='{"attributes.os_version": ["sccm", "agent"]}')
    _run(client, headers, [{**item, "attributes": {"os_version": "sccm-1"}}], source="sccm")
    _run(client, headers, [{**item, "attributes": {"os_version": "agent-2"}}])
    assert _attributes(client, headers, ci_id)["os_version"] == "sccm-1"
    _run(client, headers, [{**item, "attributes": {"os_version": "sccm-2"}}], source="sccm")
    assert _attributes(client, headers, ci_id)["os_version"] == "sccm-2"
    seen = dict(db.session.execute(select(CISourceSeen.source, CISourceSeen.ci_id)).all())
    assert seen == {"agent": ci_id, "sccm": ci_id}


def _attributes(client, headers, ci_id):
    return client.get(f"/api/v1/cis/{ci_id}", headers=headers).json["attributes"]


def test_stale_cis_report(db, client, make):
    headers = make.headers("integration")
    run = _run(client, headers, [{"ci_class": "server", "hostname": "old"}, {"ci_class": "server", "hostname": "new"}])
    old, new = (r["ci_id"] for r in sorted(run["results"], key=lambda r: r["index"]))
    db.session.execute(
        update(CISourceSeen).where(CISourceSeen.ci_id == old).values(last_seen_at=utcnow() - timedelta(days=45))
    )
    db.session.commit()
    report = client.get("/api/v1/reports/stale-cis", headers=headers, query_string={"days": 30})
    assert report.status_code == 200, report.json
    rows = report.json if isinstance(report.json, list) else report.json.get("rows")
    assert [r["ci_id"] for r in rows] == [old] and rows[0]["days_unseen"] >= 44 and rows[0]["sources"] == "agent"
    assert new not in [r["ci_id"] for r in rows]
    week = client.get("/api/v1/reports/stale-cis", headers=headers, query_string={"days": 60}).json
    assert (week if isinstance(week, list) else week.get("rows")) == []


def test_installed_software_becomes_software_cis_linked_by_installed_on(db, client, make):
    headers = make.headers("integration")
    software = [
        {"name": "Firefox", "version": "128.0", "publisher": "Mozilla"},
        {"name": "7-Zip", "version": "24.08", "publisher": "Igor Pavlov"},
    ]
    items = [
        {"ci_class": "laptop", "hostname": "lt-1", "software": software},
        {"ci_class": "laptop", "hostname": "lt-2", "software": software[:1]},
        {"ci_class": "printer", "hostname": "pr-1", "software": software[:1]},
    ]
    run = _run(client, headers, items)
    assert run["counts"]["software_created"] == 2 and run["counts"]["installations_created"] == 3
    assert run["counts"]["software_skipped"] == 1
    again = _run(client, headers, items)
    assert "software_created" not in again["counts"] and "installations_created" not in again["counts"]
    firefox = db.session.scalar(select(ConfigurationItem).where(ConfigurationItem.name == "Firefox"))
    assert firefox.ci_class == "software" and firefox.attributes == {"version": "128.0", "publisher": "Mozilla"}
    installs = db.session.scalars(
        select(Relationship).where(Relationship.source_id == firefox.id, Relationship.type == "installed_on")
    ).all()
    assert len(installs) == 2


def test_relationships_named_in_items(db, client, make):
    headers = make.headers("integration")
    switch = make.ci("network_switch", name="sw-1", attributes={"hostname": "sw-1"})
    run = _run(
        client,
        headers,
        [
            {
                "ci_class": "server",
                "hostname": "h1",
                "relationships": [{"type": "connected_to", "target": {"hostname": "sw-1"}}],
            },
            {
                "ci_class": "server",
                "hostname": "h2",
                "relationships": [{"type": "connected_to", "target": {"hostname": "nope"}}],
            },
        ],
    )
    assert run["counts"]["relationships_created"] == 1 and run["counts"]["relationship_error"] == 1
    h1 = _by_index(run)[0]["ci_id"]
    assert db.session.scalar(select(Relationship.target_id).where(Relationship.source_id == h1)) == switch.id


def test_large_payloads_run_as_a_job(db, client, make, config):
    config(CAIRN_DISCOVERY_INLINE_ITEMS="2")
    headers = make.headers("integration")
    items = [{"ci_class": "server", "hostname": f"bulk-{i}"} for i in range(3)]
    response = client.post(RUNS, headers=headers, json={"source": "agent", "items": items})
    assert response.status_code == 202
    run = client.get(f"{RUNS}/{response.json['id']}", headers=headers).json
    assert run["status"] == "done" and run["counts"]["created"] == 3  # no Redis here: the job ran inline
    assert client.get(f"{RUNS}/999999", headers=headers).status_code == 404
    assert client.post(RUNS, headers=headers, json={"source": "bad source", "items": items}).status_code == 422
