"""The agent inventory endpoint with captured inventories: mapping, idempotence, disappearing
software, hostile input, tokens."""

import logging
import re
import zlib

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem
from integrations.agents.models import AgentDevice
from relations.models import Relationship
from tests.integrations.agents.conftest import compressed, fixture_xml

CT = {"Content-Type": "application/x-compress"}


def post(client, token, body: bytes, headers=CT):
    return client.post(f"/api/v1/agent-inventory/{token}", data=body, headers=headers)


def reply(response) -> str:
    return zlib.decompress(response.data).decode()


def changes(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ChangeLog))


def installations(db, ci_id: int, open_only=True) -> list[Relationship]:
    stmt = select(Relationship).where(Relationship.target_id == ci_id, Relationship.type == "installed_on")
    if open_only:
        stmt = stmt.where(Relationship.valid_to.is_(None))
    return list(db.session.scalars(stmt))


def test_prolog_is_answered_send_with_a_frequency(client, site_token):
    body = compressed("<?xml version='1.0'?><REQUEST><DEVICEID>pc-1</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>")
    response = post(client, site_token, body)
    assert response.status_code == 200
    assert response.mimetype == "application/x-compress"
    assert "<RESPONSE>SEND</RESPONSE>" in reply(response)
    assert "<PROLOG_FREQ>24</PROLOG_FREQ>" in reply(response)


@pytest.mark.parametrize("name", ["fusioninventory", "ocsinventory"])
def test_inventory_maps_this_machine_and_a_second_send_changes_nothing(client, db, site_token, name):
    xml = fixture_xml(name)
    response = post(client, site_token, compressed(xml))
    assert response.status_code == 200, response.data
    assert "<RESPONSE>no_account_update</RESPONSE>" in reply(response)
    device_id = re.search(rb"<DEVICEID>([^<]+)</DEVICEID>", xml).group(1).decode()
    device = db.session.scalar(select(AgentDevice).where(AgentDevice.device_id == device_id))
    ci = db.session.get(ConfigurationItem, device.ci_id)
    hostname = re.search(rb"<HARDWARE>.*?<NAME>([^<]+)</NAME>", xml, re.S).group(1).decode()
    assert ci.name == hostname
    assert ci.ci_class in ("virtual_machine", "server", "desktop", "laptop")
    assert ci.attributes["os"] and ci.attributes["os_version"]
    assert ci.attributes["cpu_cores"] >= 1 and ci.attributes["ram_gb"] > 0
    macs = set(re.findall(rb"<MACADDR>([^<]+)</MACADDR>", xml))
    assert set(ci.attributes["mac_addresses"]) <= {m.decode().lower() for m in macs}
    assert ci.attributes["mac_addresses"] and ci.attributes["ip_addresses"]
    assert device.details["interfaces"] and device.details["cpus"]
    software = len(set(re.findall(rb"<SOFTWARES>.*?<NAME>([^<]+)</NAME>", xml, re.S)))
    assert len(installations(db, ci.id)) >= min(software, 100) > 0
    db.session.commit()

    before = changes(db)
    response = post(client, site_token, compressed(xml))
    assert response.status_code == 200
    assert changes(db) == before
    assert device.last_run.counts.get("unchanged") == 1
    assert db.session.scalar(select(func.count()).select_from(ConfigurationItem).where(
        ConfigurationItem.ci_class != "software")) == 1  # fmt: skip


def test_software_that_disappeared_loses_its_installation(client, db, site_token):
    xml = fixture_xml("fusioninventory").decode()
    assert post(client, site_token, compressed(xml)).status_code == 200
    device = db.session.scalar(select(AgentDevice))
    before = {r.source_id for r in installations(db, device.ci_id)}
    blocks = re.findall(r"<SOFTWARES>.*?</SOFTWARES>", xml, re.S)
    removed = blocks[:3]
    for block in removed:
        xml = xml.replace(block, "", 1)
    upgraded = blocks[3]
    xml = xml.replace(upgraded, re.sub(r"<VERSION>[^<]*</VERSION>", "<VERSION>99.9</VERSION>", upgraded), 1)
    db.session.commit()
    logged = changes(db)
    assert post(client, site_token, compressed(xml)).status_code == 200
    after = {r.source_id: r for r in installations(db, device.ci_id)}
    assert len(before) - len(after) == 3
    closed = [r for r in installations(db, device.ci_id, open_only=False) if r.valid_to is not None]
    assert len(closed) == 4  # three gone, one replaced by its new version
    assert any("version 99.9" in r.note for r in after.values())
    assert changes(db) > logged  # the closures are in the change log


def test_matching_by_mac_then_device_id(client, db, site_token):
    xml = fixture_xml("fusioninventory").decode()
    assert post(client, site_token, compressed(xml)).status_code == 200
    first = db.session.scalar(select(AgentDevice)).ci_id
    # A new device id, same MACs: the same CI.
    renamed = xml.replace("<DEVICEID>", "<DEVICEID>x-", 1)
    assert post(client, site_token, compressed(renamed)).status_code == 200
    ids = {d.ci_id for d in db.session.scalars(select(AgentDevice))}
    assert ids == {first}
    # Same device id, no MACs at all: still the same CI.
    bare = re.sub(r"<NETWORKS>.*?</NETWORKS>", "", xml, flags=re.S)
    assert post(client, site_token, compressed(bare)).status_code == 200
    assert {d.ci_id for d in db.session.scalars(select(AgentDevice))} == {first}


def test_logged_in_user_is_proposed_not_forced(client, db, make, site_token):
    user = make.user("requester", email="jdoe@example.com")
    xml = fixture_xml("fusioninventory").decode().replace("<CONTENT>", "<CONTENT><USERS><LOGIN>jdoe</LOGIN></USERS>", 1)
    assert post(client, site_token, compressed(xml)).status_code == 200
    device = db.session.scalar(select(AgentDevice))
    assert device.proposed_assignee_id == user.id and device.logged_in_user == "jdoe"
    assert db.session.get(ConfigurationItem, device.ci_id).assigned_to_id is None


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<REQUEST><DEVICEID>&lol2;</DEVICEID><QUERY>INVENTORY</QUERY><CONTENT/></REQUEST>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<REQUEST><DEVICEID>&x;</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>"""


@pytest.mark.parametrize(
    "body, status, says",
    [
        (b"not compressed, not xml", 400, "neither XML"),
        (zlib.compress(b"<REQUEST><QUERY>PROLOG"), 400, "malformed"),
        (zlib.compress(b"<REQUEST><QUERY>PROLOG</QUERY></REQUEST>")[:-6], 400, "truncated"),
        (compressed(BOMB), 400, "refused"),
        (compressed(EXTERNAL), 400, "refused"),
        (compressed("<HTML/>"), 400, "REQUEST"),
        (compressed("<REQUEST><DEVICEID>a</DEVICEID><QUERY>UPDATE</QUERY></REQUEST>"), 400, "Unsupported"),
        (compressed("<REQUEST><DEVICEID>a</DEVICEID><QUERY>INVENTORY</QUERY></REQUEST>"), 400, "CONTENT"),
        (compressed("<REQUEST><QUERY>INVENTORY</QUERY><CONTENT/></REQUEST>"), 400, "DEVICEID"),
        (b"", 400, "empty"),
    ],
)
def test_bad_input_is_a_clear_problem_and_writes_nothing(client, db, site_token, body, status, says):
    before = changes(db)
    response = post(client, site_token, body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert says.lower() in response.json["detail"].lower()
    assert changes(db) == before


def test_sizes_are_capped_before_and_after_decompression(app, client, site_token):
    bomb = zlib.compress(b"<REQUEST>" + b" " * 50_000_000 + b"</REQUEST>", 9)  # ~50 kB that inflate to 50 MB
    app.config["CAIRN_AGENT_MAX_XML_BYTES"] = 1_000_000
    app.config["CAIRN_AGENT_MAX_COMPRESSED_BYTES"] = 200_000
    try:
        response = post(client, site_token, bomb)
        assert response.status_code == 413 and "decompressed" in response.json["detail"]
        response = post(client, site_token, zlib.compress(bytes(range(256)) * 1000, 0))  # 256 kB stored
        assert response.status_code == 413
    finally:
        app.config.pop("CAIRN_AGENT_MAX_XML_BYTES")
        app.config.pop("CAIRN_AGENT_MAX_COMPRESSED_BYTES")


def test_a_wrong_or_revoked_token_is_401(client, db, site_token):
    body = compressed("<REQUEST><DEVICEID>a</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>")
    assert post(client, "nonsense", body).status_code == 401
    assert post(client, site_token[:-1] + "x", body).status_code == 401
    from cairn.db import utcnow
    from integrations.agents.models import AgentToken

    db.session.scalar(select(AgentToken)).revoked_at = utcnow()
    db.session.commit()
    assert post(client, site_token, body).status_code == 401


def test_the_site_token_grants_nothing_else(client, site_token):
    headers = {"Authorization": f"Bearer {site_token}"}
    assert client.get("/api/v1/cis", headers=headers).status_code == 401
    assert client.post("/api/v1/discovery/runs", headers=headers, json={}).status_code == 401


def test_token_create_prints_the_token_alone_on_the_last_line(app, client, db):
    result = app.test_cli_runner().invoke(args=["agents", "token", "create", "paris-1"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"cairn_agent_[A-Za-z0-9_-]{40,}", secret)
    body = compressed("<REQUEST><DEVICEID>a</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>")
    assert post(client, secret, body).status_code == 200
    assert secret not in str(db.session.execute(select(AgentDevice)).all())


def test_other_methods_never_500(client, site_token):
    for method in ("GET", "PUT", "DELETE", "OPTIONS"):
        for token in (site_token, "nonsense"):
            response = client.open(f"/api/v1/agent-inventory/{token}", method=method)
            assert response.status_code < 500, (method, response.status_code)


def test_the_site_token_never_reaches_the_logs(client, site_token, caplog):
    """The token is in the URL: the access log (and an error's log line) show the route instead."""
    caplog.set_level(logging.INFO, logger="cairn.access")
    prolog = compressed("<REQUEST><QUERY>PROLOG</QUERY><DEVICEID>log-test</DEVICEID></REQUEST>")
    assert post(client, site_token, prolog).status_code == 200
    assert post(client, site_token + "x", prolog).status_code == 401
    lines = [r for r in caplog.records if r.name == "cairn.access"]
    assert len(lines) == 2
    for record in lines:
        assert site_token not in record.getMessage() and site_token not in str(record.__dict__)
        assert record.path == "/api/v1/agent-inventory/<string:token>"
