"""Approvers and technicians acting at the same moment (real commits, real threads): an any-of chain
is decided once, and two technicians completing the last tasks close the request exactly once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cairn.auth.services import create_team, create_token, create_user
from tickets.catalogue.models import CatalogueTask
from tickets.catalogue.services import place_order, save_item

THREADS = 4


def _race(app, calls):
    """Run ``calls`` (method, path, headers, body) at once; their (status, json) in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index, method, path, headers, body):
        client = app.test_client()
        start.wait()
        response = getattr(client, method)(path, json=body, headers=headers)
        results[index] = (response.status_code, response.json)

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _headers(user, db):
    _, secret = create_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_an_any_of_chain_is_decided_once_and_parallel_tasks_close_the_request_once(app, committed_db):
    db = committed_db
    requester = create_user("race-requester@example.com", "requester")
    approvers = [create_user(f"race-approver{i}@example.com", "agent") for i in range(THREADS)]
    techs = [create_user(f"race-tech{i}@example.com", "agent") for i in range(THREADS)]
    team = create_team("Race team", member_ids=[t.id for t in techs])
    item = save_item(
        {
            "name": "Race item",
            "approval_mode": "any_of",
            "approval_steps": [{"kind": "user", "user_id": a.id} for a in approvers],
            "tasks": [{"title": f"Part {i}", "team_id": team.id, "stage": 1} for i in range(THREADS)],
            "form": [],
            "audience": {},
            "active": True,
        }
    )
    ticket = place_order([{"item_id": item.id, "fields": {}}], requester)
    db.session.commit()
    steps = sorted(ticket_steps(db, ticket.id), key=lambda s: s[1])
    calls = [
        ("post", f"/api/v1/catalogue-approvals/{step_id}/decisions", _headers(a, db), {"decision": "approve"})
        for (step_id, _), a in zip(steps, approvers, strict=True)
    ]
    statuses = sorted(status for status, _ in _race(app, calls))
    assert statuses == [201] + [409] * (THREADS - 1)
    tasks = db.session.scalars(select(CatalogueTask.id).where(CatalogueTask.ticket_id == ticket.id)).all()
    calls = [
        ("post", f"/api/v1/catalogue-tasks/{task_id}/complete", _headers(t, db), {})
        for task_id, t in zip(tasks, techs, strict=True)
    ]
    assert sorted(status for status, _ in _race(app, calls)) == [200] * THREADS
    db.session.expire_all()
    answer = app.test_client().get(f"/api/v1/catalogue-orders/{ticket.id}", headers=_headers(requester, db)).json
    assert answer["state"] == "closed" and answer["stage"] == "fulfilled"
    moves = db.session.scalar(
        select(func.count()).where(
            ChangeLog.object_type == "ticket", ChangeLog.object_id == ticket.id, ChangeLog.action == "transition"
        )
    )
    assert moves == 3  # new -> in_progress -> resolved -> closed, each once


def ticket_steps(db, ticket_id):
    from tickets.catalogue.models import CatalogueApprovalStep

    return db.session.execute(
        select(CatalogueApprovalStep.id, CatalogueApprovalStep.number).where(
            CatalogueApprovalStep.ticket_id == ticket_id
        )
    ).all()
