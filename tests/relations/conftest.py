"""Helpers for building small estates whose impact answers are known."""

from __future__ import annotations

import pytest


class Estate:
    """Creates CIs and relationships through the services, committing like the API does."""

    def __init__(self, db, make):
        self.db = db
        self.make = make

    def ci(self, ci_class="server", name=None, **fields):
        return self.make.ci(ci_class, name=name, **fields).id

    def cluster(self, min_members_up, name=None):
        return self.ci("cluster", name=name, attributes={"min_members_up": min_members_up})

    def rel(self, source_id, type_, target_id):
        from relations.services import create_relationship

        rel = create_relationship({"source_id": source_id, "type": type_, "target_id": target_id})
        self.db.session.commit()
        return rel

    def depends(self, dependent, dependency):
        return self.rel(dependent, "depends_on", dependency)

    def unlink(self, rel):
        from relations.services import delete_relationship

        delete_relationship(rel)
        self.db.session.commit()


@pytest.fixture
def estate(db, make):
    return Estate(db, make)


def states(result) -> dict[int, tuple[str, int]]:
    """ci id -> (state, depth) of an ImpactResult."""
    return {i.ci_id: (i.state, i.depth) for i in result.impacted}
