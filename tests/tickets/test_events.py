"""Every ticket write is in the change log under the actions webhooks map to ticket.* events."""

from sqlalchemy import select

from cairn.audit.models import ChangeLog


def test_ticket_writes_are_logged_as_created_updated_transitioned_commented(client, desk, agent, db):
    t = desk.open(title="VPN down")
    client.patch(f"/api/v1/tickets/{t['id']}", json={"title": "VPN down for sales"}, headers=agent.headers)
    desk.move(t, "in_progress")
    client.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "on it"}, headers=agent.headers)
    rows = db.session.scalars(
        select(ChangeLog)
        .where(ChangeLog.object_type == "ticket", ChangeLog.object_id == t["id"])
        .order_by(ChangeLog.id)
    ).all()
    assert [r.action for r in rows] == ["create", "update", "transition", "comment"]
    assert rows[1].changes["title"] == ["VPN down", "VPN down for sales"]
    assert rows[2].changes["state"] == ["new", "in_progress"] and "acknowledged_at" in rows[2].changes
    assert rows[3].changes["body"] == [None, "on it"]
    assert all(r.actor == agent.user.email for r in rows)
    # the ticket's own history endpoint shows the same, newest first
    history = client.get(f"/api/v1/tickets/{t['id']}/history", headers=agent.headers).json
    assert [h["action"] for h in history] == ["comment", "transition", "update", "create"]
