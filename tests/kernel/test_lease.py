"""Leases: one holder at a time, and a request for another pass is never lost."""

from __future__ import annotations

from cairn.jobs import lease


def test_a_busy_lease_takes_a_request_for_one_more_pass(db):
    token = lease.acquire("test:busy", 60)
    assert token is not None and lease.acquire("test:busy", 60) is None, "one holder at a time"
    ran: list[int] = []
    assert lease.exclusively("test:busy", 60, lambda renew: ran.append(1)) is False
    assert ran == [], "the holder runs, not the caller"
    assert lease.release("test:busy", token) is True, "the holder is told to make one more pass"
    assert lease.acquire("test:busy", 60) is not None, "released: free again"


def test_a_request_made_during_a_pass_causes_one_more_pass(db):
    passes: list[int] = []

    def work(renew):
        passes.append(len(passes))
        renew()
        if len(passes) == 1:  # a nudge arrives while the first pass runs
            lease.request_rerun("test:rerun")

    assert lease.exclusively("test:rerun", 60, work) is True
    assert passes == [0, 1], "exactly one more pass, then it stops"
    assert lease.acquire("test:rerun", 60) is not None, "and it let the lease go"
