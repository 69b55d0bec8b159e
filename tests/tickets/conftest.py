"""Fixtures for the tickets tests: users per role with their headers, and a helper that drives the API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Actor:
    user: object
    headers: dict

    @property
    def id(self) -> int:
        return self.user.id


@pytest.fixture
def actor(make):
    """actor(role) -> a user of that role and its auth headers."""

    def build(role: str = "agent") -> Actor:
        user = make.user(role)
        return Actor(user, make.headers(user=user))

    return build


@pytest.fixture
def agent(actor):
    return actor("agent")


@pytest.fixture
def manager(actor):
    return actor("change_manager")


@pytest.fixture
def requester(actor):
    return actor("requester")


class Desk:
    """Opens and moves tickets through the HTTP API, asserting each step worked."""

    def __init__(self, client, headers):
        self.client = client
        self.headers = headers

    def open(self, kind="incident", title=None, headers=None, expect=201, **fields):
        body = {"kind": kind, "title": title or f"{kind} ticket", **fields}
        r = self.client.post("/api/v1/tickets", json=body, headers=headers or self.headers)
        assert r.status_code == expect, r.json
        return r.json

    def move(self, ticket, to, headers=None, expect=200, **body):
        r = self.client.post(
            f"/api/v1/tickets/{ticket['id']}/transitions", json={"to": to, **body}, headers=headers or self.headers
        )
        assert r.status_code == expect, r.json
        return r.json

    def get(self, ticket, headers=None):
        r = self.client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers or self.headers)
        assert r.status_code == 200, r.json
        return r.json

    def change(self, ci_ids, start, end, title="change", **fields):
        return self.open(
            "change",
            title=title,
            ci_ids=ci_ids,
            planned_start=start.isoformat(),
            planned_end=end.isoformat(),
            **fields,
        )

    def schedule(self, change, manager_headers):
        """new -> assess -> authorize -> approved -> scheduled."""
        self.move(change, "assess")
        self.move(change, "authorize")
        r = self.client.post(
            f"/api/v1/tickets/{change['id']}/approvals",
            json={"decision": "approve", "comment": "ok"},
            headers=manager_headers,
        )
        assert r.status_code == 201, r.json
        return self.move(change, "scheduled", headers=manager_headers)


@pytest.fixture
def desk(client, agent):
    return Desk(client, agent.headers)
