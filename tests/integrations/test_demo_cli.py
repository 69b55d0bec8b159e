"""`cairn seed-demo` on a database that holds the demo already says so in one line and exits 1."""

from __future__ import annotations

from sqlalchemy import func, select

from cmdb.models import ConfigurationItem


def _count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ConfigurationItem))


def test_seeding_twice_says_what_happened_and_what_to_do(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().splitlines()[-1].startswith("cairn_")  # the admin token, last
    cis = _count(db)
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 1
    assert again.exception is None or isinstance(again.exception, SystemExit)
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in again.output
    assert "holds the demo estate already" in lines[0] and "empty database" in lines[0]
    assert again.stdout == ""
    assert _count(db) == cis
    # `make run` seeds only an empty database: a second run is fine and quiet about it.
    quiet = runner.invoke(args=["seed-demo", "--if-empty"])
    assert quiet.exit_code == 0 and "nothing seeded" in quiet.output
