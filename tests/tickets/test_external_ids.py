"""Tickets carry the ids other tools know them by, one per source, never shared (issue 6)."""


def test_tickets_carry_external_ids(client, desk, agent, requester):
    ticket = desk.open(title="printer jam", external_ids=[{"source": "servicenow", "id": "INC0012345"}])
    assert ticket["external_ids"] == [{"source": "servicenow", "id": "INC0012345"}]
    found = client.get("/api/v1/tickets/external/servicenow/INC0012345", headers=agent.headers)
    assert found.status_code == 200 and found.json["id"] == ticket["id"]
    assert client.get("/api/v1/tickets/external/servicenow/nope", headers=agent.headers).status_code == 404

    taken = client.post(
        "/api/v1/tickets",
        headers=agent.headers,
        json={"kind": "incident", "title": "x", "external_ids": [{"source": "servicenow", "id": "INC0012345"}]},
    )
    assert taken.status_code == 409 and str(ticket["id"]) in taken.json["detail"]

    url = f"/api/v1/tickets/{ticket['id']}"
    both = client.patch(
        url,
        headers=agent.headers,
        json={"external_ids": [{"source": "jira", "id": "OPS-7"}, {"source": "pd", "id": "P1"}]},
    )
    assert both.status_code == 200
    assert both.json["external_ids"] == [{"source": "jira", "id": "OPS-7"}, {"source": "pd", "id": "P1"}]
    twice = client.patch(
        url, headers=agent.headers, json={"external_ids": [{"source": "a", "id": "1"}, {"source": "a", "id": "2"}]}
    )
    assert twice.status_code == 422
    history = client.get(f"{url}/history", headers=agent.headers)
    assert history.status_code == 200


def test_a_requester_cannot_look_up_someone_elses_ticket(client, desk, requester, actor):
    desk.open(title="mine", external_ids=[{"source": "sn", "id": "A1"}])
    assert client.get("/api/v1/tickets/external/sn/A1", headers=requester.headers).status_code == 404
