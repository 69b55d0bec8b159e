"""The IMAP poller: fetch by UID above the last one stored, store each message through intake, then
move it to the processed folder.

Safe against overlapping runs (a lease row per mailbox: a second run returns ``locked``) and against a
connection dropped mid-fetch: the last UID moves only after the message is committed, and storing is
idempotent, so a re-fetch is a no-op and nothing is lost. Messages stored but not yet moved (the
connection dropped between the two) are moved on the next run. A changed UIDVALIDITY starts over from
UID 1, which the unique (mailbox, Message-ID) turns into no-ops for what was already stored.
"""

from __future__ import annotations

import imaplib
import logging
import os
import re
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from cairn.db import db, utcnow
from cairn.uow import checkpoint
from integrations.email import intake, settings
from integrations.email.models import ImapState

log = logging.getLogger("cairn.mail")
LEASE = timedelta(minutes=10)


@dataclass
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    ssl: bool = True
    timeout: float = 60.0
    batch: int = 200

    @property
    def key(self) -> str:
        return f"imap://{self.user}@{self.host}:{self.port}/{self.folder}"[:255]

    @classmethod
    def from_settings(cls) -> ImapAccount:
        return cls(
            host=settings.get("CAIRN_MAIL_IMAP_HOST"),
            port=settings.get_int("CAIRN_MAIL_IMAP_PORT"),
            user=settings.get("CAIRN_MAIL_IMAP_USER"),
            password=settings.get("CAIRN_MAIL_IMAP_PASSWORD"),
            folder=settings.get("CAIRN_MAIL_IMAP_FOLDER"),
            processed_folder=settings.get("CAIRN_MAIL_IMAP_PROCESSED_FOLDER"),
            ssl=settings.get_bool("CAIRN_MAIL_IMAP_SSL"),
            timeout=settings.get_float("CAIRN_MAIL_IMAP_TIMEOUT"),
            batch=settings.get_int("CAIRN_MAIL_IMAP_BATCH"),
        )


def _acquire(key: str, owner: str) -> bool:
    if db.session.get(ImapState, key) is None:
        try:
            with db.session.begin_nested():
                db.session.add(ImapState(mailbox=key, last_uid=0))
        except IntegrityError:
            pass
    now = utcnow()
    taken = db.session.execute(
        update(ImapState)
        .where(ImapState.mailbox == key, or_(ImapState.locked_until.is_(None), ImapState.locked_until < now))
        .values(locked_by=owner, locked_until=now + LEASE)
    ).rowcount
    checkpoint()
    return taken == 1


def _release(key: str, owner: str) -> None:
    db.session.rollback()
    db.session.execute(
        update(ImapState)
        .where(ImapState.mailbox == key, ImapState.locked_by == owner)
        .values(locked_by=None, locked_until=None)
    )
    checkpoint()


def _connect(account: ImapAccount) -> imaplib.IMAP4:
    cls = imaplib.IMAP4_SSL if account.ssl else imaplib.IMAP4
    conn = cls(account.host, account.port, timeout=account.timeout)
    conn.login(account.user, account.password)
    # Servers announce more after login (MOVE, UIDPLUS); imaplib keeps only the greeting's list.
    typ, data = conn.capability()
    if typ == "OK" and data and data[-1]:
        conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
    return conn


def _check(result, what: str):
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {typ} {data!r}")
    return data


def _move(conn: imaplib.IMAP4, uids: list[int], folder: str) -> None:
    if not uids:
        return
    uid_set = ",".join(str(u) for u in uids)
    if "MOVE" in conn.capabilities:
        _check(conn.uid("MOVE", uid_set, folder), "move")
        return
    _check(conn.uid("COPY", uid_set, folder), "copy")
    _check(conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "flag deleted")
    if "UIDPLUS" in conn.capabilities:
        _check(conn.uid("EXPUNGE", uid_set), "uid expunge")
    else:
        _check(conn.expunge(), "expunge")


def poll(account: ImapAccount, owner: str | None = None) -> dict:
    """One run over the account's folder. Returns {stored, duplicates, moved} or {locked: True}.
    Network errors propagate (after the lease is released): the next run carries on."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"[:100]
    key = account.key
    if not _acquire(key, owner):
        return {"locked": True}
    result = {"stored": 0, "duplicates": 0, "moved": 0}
    conn = None
    try:
        conn = _connect(account)
        if account.processed_folder:
            conn.create(account.processed_folder)  # NO when it exists: fine
        data = _check(conn.select(account.folder), "select")
        uidvalidity = _uidvalidity(conn)
        state = db.session.get(ImapState, key)
        if state.uidvalidity != uidvalidity:
            state.uidvalidity, state.last_uid = uidvalidity, 0
            checkpoint()
        log.debug("imap %s: %s messages", key, data)
        uids = sorted(int(u) for u in (_check(conn.uid("SEARCH", None, "ALL"), "search")[0] or b"").split())
        # Stored earlier but not moved (the connection dropped in between): move them now.
        leftovers = [u for u in uids if u <= state.last_uid]
        if leftovers and account.processed_folder:
            _move(conn, leftovers, account.processed_folder)
            result["moved"] += len(leftovers)
        for uid in [u for u in uids if u > state.last_uid][: account.batch]:
            fetched = _check(conn.uid("FETCH", str(uid), "(BODY.PEEK[])"), "fetch")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if raw is None:
                continue  # expunged by someone else meanwhile
            try:
                _, created = intake.accept(raw, source="imap", mailbox=key)
            except intake.TooLarge as exc:
                log.warning("imap %s uid %s refused: %s", key, uid, exc)
                created = False
            result["stored" if created else "duplicates"] += 1
            db.session.execute(
                update(ImapState).where(ImapState.mailbox == key).values(last_uid=uid, locked_until=utcnow() + LEASE)
            )
            checkpoint()
            if account.processed_folder:
                _move(conn, [uid], account.processed_folder)
                result["moved"] += 1
    finally:
        if conn is not None:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
        _release(key, owner)
    return result


def _uidvalidity(conn: imaplib.IMAP4) -> int | None:
    _, data = conn.response("UIDVALIDITY")
    for item in data or []:
        if item:
            match = re.search(rb"\d+", item if isinstance(item, bytes) else str(item).encode())
            if match:
                return int(match.group())
    return None
