"""Read-only views (cairn.uow.read_only): on PostgreSQL their statements run outside a transaction
block; the connection goes back to the pool as it came (the next request's writes are one
transaction again), and the answers are those of any other GET."""

import re

import pytest
from sqlalchemy import event, func, select

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem


def _watch(engine, statements=None):
    seen: list[tuple[str, bool]] = []

    def before(conn, _cursor, statement, *_args):
        # psycopg's flag; SQLite's driver has none (and read-only views change nothing there)
        autocommit = getattr(conn.connection.dbapi_connection, "autocommit", False) is True
        seen.append((statement.split()[0].upper(), autocommit))
        if statements is not None:
            statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(engine, "before_cursor_execute", before)


def test_read_only_gets_run_without_a_transaction_and_writes_keep_theirs(app, committed_db, committed_make):
    headers = committed_make.headers("admin")
    ci = committed_make.ci("server", name="ro-1")
    committed_db.session.remove()
    client = app.test_client()
    postgres = committed_db.engine.dialect.name == "postgresql"
    # The first request may touch the token (a write): out of the way before watching.
    assert client.get(f"/api/v1/cis/{ci.id}", headers=headers).status_code == 200

    statements: list[str] = []
    seen, stop = _watch(committed_db.engine, statements)
    try:
        one = client.get(f"/api/v1/cis/{ci.id}", headers=headers)
        listed = client.get("/api/v1/cis?ci_class=server", headers=headers)
        reads, read_statements = list(seen), list(statements)
        seen.clear()
        patched = client.patch(f"/api/v1/cis/{ci.id}", headers=headers, json={"description": "after a read"})
        writes = list(seen)
        seen.clear()
        csv = client.get("/api/v1/cis?ci_class=server&format=csv", headers=headers)
        exported = list(seen)
    finally:
        stop()
    assert one.status_code == 200 and one.json["name"] == "ro-1" and one.headers["ETag"]
    assert listed.status_code == 200 and [c["id"] for c in listed.json] == [ci.id]
    assert '"total": 1' in listed.headers["X-Pagination"]
    assert patched.status_code == 200 and patched.json["description"] == "after a read"
    assert csv.status_code == 200 and "ro-1" in csv.get_data(as_text=True)
    assert reads and {verb for verb, _ in reads} <= {"SELECT", "BEGIN"}  # SQLite's BEGIN is a statement
    # the answers' own statements are among them (on PostgreSQL run straight on the driver's cursor)
    from_ci = [sql for sql in read_statements if sql.startswith("SELECT") and re.search(r"\bFROM ci\b", sql)]
    assert len(from_ci) == 3, read_statements  # the CI; the list's count and page
    assert all(autocommit is postgres for _, autocommit in reads)
    # the write after them: in one transaction, on whatever pooled connection it got
    assert {verb for verb, _ in writes} >= {"SELECT", "UPDATE", "INSERT"}
    assert not any(autocommit for _, autocommit in writes)
    # a CSV export streams through a server-side cursor: it keeps its transaction
    assert exported and not any(autocommit for _, autocommit in exported)
    rows = committed_db.session.scalar(
        select(func.count()).select_from(ChangeLog).where(ChangeLog.object_type == "ci", ChangeLog.object_id == ci.id)
    )
    assert rows == 2  # created, updated
    assert committed_db.session.get(ConfigurationItem, ci.id).description == "after a read"


@pytest.mark.parametrize("path", ["/api/v1/cis/{id}", "/api/v1/cis?ci_class=server"])
def test_read_only_gets_keep_auth_and_errors(app, committed_db, committed_make, path):
    ci = committed_make.ci("server", name="ro-2")
    committed_db.session.remove()
    client = app.test_client()
    url = path.format(id=ci.id)
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer cairn_nope"}).status_code == 401
    headers = committed_make.headers("agent")
    assert client.get(url + ("&" if "?" in url else "?") + "bogus=1", headers=headers).status_code == 422
    assert client.get("/api/v1/cis/999999", headers=headers).status_code == 404
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    if "?" not in url:
        again = client.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
