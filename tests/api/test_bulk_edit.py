"""Bulk edit (PATCH /cis, PATCH /tickets): the same fields set on objects named by id or matched by the
list's filter; per-object results (one bad object fails alone); one change-log row per object that
changed; a dry run writes nothing; at most 1,000 a call; roles and visibility as for one object."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem


def _changes(db, object_type: str) -> int:
    return db.session.scalar(select(func.count()).select_from(ChangeLog).where(ChangeLog.object_type == object_type))


@pytest.fixture
def laptops(make):
    team = make.team("Field")
    made = [make.ci("laptop", name=f"LT-{n}", status="in_stock") for n in range(4)]
    return {"ids": [ci.id for ci in made], "team": team.id}


def test_cis_by_id_each_updated_once_in_the_change_log(client, make, db, laptops):
    headers = make.headers("asset_manager")
    before = _changes(db, "ci")
    body = {"ids": laptops["ids"][:3], "set": {"owner_team_id": laptops["team"], "criticality": "high"}}
    response = client.patch("/api/v1/cis", headers=headers, json=body)
    assert response.status_code == 200, response.json
    assert [(r["index"], r["id"], r["status"]) for r in response.json] == [
        (0, laptops["ids"][0], "updated"), (1, laptops["ids"][1], "updated"), (2, laptops["ids"][2], "updated"),
    ]  # fmt: skip
    assert _changes(db, "ci") == before + 3
    db.session.expire_all()
    teams = {ci.id: ci.owner_team_id for ci in db.session.scalars(select(ConfigurationItem))}
    assert [teams[i] for i in laptops["ids"]] == [laptops["team"]] * 3 + [None]
    again = client.patch("/api/v1/cis", headers=headers, json=body).json
    assert {r["status"] for r in again} == {"unchanged"} and _changes(db, "ci") == before + 3


def test_cis_by_filter_dry_run_then_for_real(client, make, db, laptops):
    make.ci("server", name="srv", status="in_stock")
    headers = make.headers("agent")
    body = {"filter": {"ci_class": "laptop", "status": "in_stock"}, "set": {"description": "pool"}, "dry_run": True}
    before = _changes(db, "ci")
    dry = client.patch("/api/v1/cis", headers=headers, json=body)
    assert dry.status_code == 200 and [r["id"] for r in dry.json] == laptops["ids"]
    assert {r["status"] for r in dry.json} == {"updated"} and _changes(db, "ci") == before, "a dry run writes nothing"
    done = client.patch("/api/v1/cis", headers=headers, json={**body, "dry_run": False}).json
    assert [r["id"] for r in done] == laptops["ids"] and _changes(db, "ci") == before + 4
    db.session.expire_all()
    assert db.session.scalar(select(ConfigurationItem.description).where(ConfigurationItem.name == "srv")) == ""


def test_one_bad_ci_fails_alone(client, make, db, laptops):
    retired = make.ci("laptop", name="old", status="retired")
    headers = make.headers("admin")
    body = {"ids": [laptops["ids"][0], retired.id, 999_999], "set": {"status": "deployed"}}
    results = client.patch("/api/v1/cis", headers=headers, json=body).json
    assert [r["status"] for r in results] == ["updated", "error", "error"]
    assert results[1]["errors"] and results[2]["errors"] == {"id": ["No object with id 999999 that you may see."]}
    db.session.expire_all()
    assert db.session.get(ConfigurationItem, retired.id).status == "retired"
    assert db.session.get(ConfigurationItem, laptops["ids"][0]).status == "deployed"


@pytest.mark.parametrize(
    "body",
    [
        {"set": {"description": "x"}},  # neither ids nor filter
        {"ids": [1], "filter": {}, "set": {"description": "x"}},  # both
        {"ids": [1, 1], "set": {"description": "x"}},
        {"ids": [], "set": {"description": "x"}},
        {"ids": list(range(1, 1002)), "set": {"description": "x"}},
        {"ids": [1]},
        {"ids": [1], "set": {"colour": "red"}},
        {"filter": {"status": "sunbathing"}, "set": {"description": "x"}},
        {"filter": {"format": "csv"}, "set": {"description": "x"}},
        {"filter": {"status": ["deployed"]}, "set": {"description": "x"}},
    ],
)
def test_bad_bodies_are_422_and_change_nothing(client, make, db, laptops, body):
    before = _changes(db, "ci")
    response = client.patch("/api/v1/cis", headers=make.headers("admin"), json=body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json" and _changes(db, "ci") == before


def test_a_filter_matching_more_than_1000_is_refused(client, make, db):
    from cmdb.services import BulkItem, bulk_upsert_cis

    bulk_upsert_cis([BulkItem(i, {"name": f"m-{i}", "ci_class": "desktop"}) for i in range(1001)])
    db.session.commit()
    response = client.patch(
        "/api/v1/cis", headers=make.headers("admin"), json={"filter": {"ci_class": "desktop"}, "set": {"vendor": "x"}}
    )
    assert response.status_code == 422 and "1,000" in response.json["detail"]


def test_roles_as_for_one_object(client, make, laptops):
    for role in ("requester", "auditor", "change_manager"):
        body = {"ids": laptops["ids"], "set": {"description": "x"}}
        assert client.patch("/api/v1/cis", headers=make.headers(role), json=body).status_code == 403


def _ticket(user, title, kind="incident"):
    from tickets.services import create_ticket

    return create_ticket({"kind": kind, "title": title, "description": "x", "impact": 3, "urgency": 3}, user)


def test_tickets_by_filter_and_by_id_closed_ones_refused_alone(client, make, db):
    agent = make.user("agent")
    team = make.team("Desk")
    tickets = [_ticket(agent, f"t{n}") for n in range(3)]
    done = _ticket(agent, "closed one")
    done.state = "closed"
    db.session.commit()
    headers = make.headers(user=agent)
    before = _changes(db, "ticket")
    body = {"ids": [t.id for t in tickets] + [done.id], "set": {"team_id": team.id, "urgency": 1}}
    results = client.patch("/api/v1/tickets", headers=headers, json=body).json
    assert [r["status"] for r in results] == ["updated", "updated", "updated", "error"]
    assert "closed" in results[3]["detail"]
    assert _changes(db, "ticket") == before + 3
    db.session.expire_all()
    from tickets.models import Ticket

    assert {db.session.get(Ticket, t.id).team_id for t in tickets} == {team.id}
    from tickets.workflow import priority_of

    assert {db.session.get(Ticket, t.id).priority for t in tickets} == {priority_of(3, 1)}, "priority follows"
    by_filter = client.patch(
        "/api/v1/tickets", headers=headers, json={"filter": {"open": "true", "kind": "incident"},
                                                  "set": {"urgency": 1}, "dry_run": True}
    )  # fmt: skip
    assert by_filter.status_code == 200 and {r["status"] for r in by_filter.json} == {"unchanged"}


def test_requesters_may_not_bulk_edit_tickets(client, make):
    requester = make.user("requester")
    mine = _ticket(requester, "mine")
    from cairn.db import db

    db.session.commit()
    body = {"ids": [mine.id], "set": {"title": "hacked"}}
    assert client.patch("/api/v1/tickets", headers=make.headers(user=requester), json=body).status_code == 403
