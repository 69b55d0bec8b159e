"""cairn.db.id_in: ``column IN ids`` for any number of ids on both databases (SQLite refuses more
than 32,766 bound parameters in one statement; PostgreSQL more than 65,535)."""

from sqlalchemy import select

from cairn.db import db, id_in
from cmdb.models import ConfigurationItem


def test_id_in_matches_exactly_the_listed_ids_at_any_count(make):
    cis = [make.ci("server", name=f"id-in-{n}") for n in range(3)]
    wanted = [cis[0].id, cis[2].id]
    for padding in (0, 60, 70_000):  # a few literal ids; past 50 one array or JSON parameter
        ids = wanted + [10_000_000 + n for n in range(padding)]
        found = db.session.scalars(select(ConfigurationItem.id).where(id_in(ConfigurationItem.id, ids))).all()
        assert sorted(found) == sorted(wanted), padding
    assert db.session.scalars(select(ConfigurationItem.id).where(id_in(ConfigurationItem.id, set()))).all() == []
