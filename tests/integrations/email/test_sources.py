"""Each source for real: `cairn mailgate` as a subprocess (exit 0 stored, 75 tempfail), the LMTP/SMTP
listener through smtplib (250 only after storing, 451 when it can't store, 552 when too big), and the
IMAP poller against Dovecot (UIDs, moving, the lock, a connection dropped mid-fetch)."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integrations.email.conftest import MAIL_CONFIG, free_port

ROOT = Path(__file__).resolve().parents[3]
CAIRN = str(Path(sys.executable).with_name("cairn"))


def mail(n: int, subject: str = "Disk full", sender: str = "alice@example.com") -> bytes:
    return (
        f"From: {sender}\r\nTo: incidents@cairn.test\r\nSubject: {subject} {n}\r\nMessage-ID: <src-{n}@example.com>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody {n}.\r\n"
    ).encode()


def _env(database_url: str, instance_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "REDIS_URL", "DATABASE_URL"))}
    env.update(MAIL_CONFIG, DATABASE_URL=database_url, CAIRN_INSTANCE_PATH=str(instance_dir), CAIRN_LOG_LEVEL="ERROR")
    return env


def _mailgate(raw: bytes, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([CAIRN, "mailgate", *args], input=raw, env=env, cwd=ROOT, capture_output=True, timeout=60)


def test_mailgate_exit_codes(committed_db, database_url, instance_dir):
    from integrations.email.models import InboundEmail

    env = _env(database_url, instance_dir)
    stored = _mailgate(mail(1), env, "--kind", "request")
    assert stored.returncode == 0, stored.stderr.decode()
    row = committed_db.session.scalar(select(InboundEmail))
    assert row.source == "mailgate" and row.status == "processed" and row.kind_hint == "request"
    assert row.ticket_id is not None
    # The database is unreachable: EX_TEMPFAIL, so the MTA keeps the message and retries.
    down = _mailgate(mail(2), {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"})
    assert down.returncode == 75, down.stderr.decode()
    assert b"try again later" in down.stderr


def test_mailgate_in_process(app, committed_db):
    """The same command in-process (cheaper than a subprocess): a redelivery, --url, an empty stdin."""
    from integrations.email.models import InboundEmail

    runner = app.test_cli_runner()
    assert runner.invoke(args=["mailgate"], input=mail(1)).exit_code == 0
    again = runner.invoke(args=["mailgate"], input=mail(1))
    assert again.exit_code == 0 and "already stored" in again.output
    assert committed_db.session.scalar(select(func.count()).select_from(InboundEmail)) == 1
    # --url: the service is unreachable -> 75 as well.
    via_http = runner.invoke(
        args=["mailgate", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x"], input=mail(3)
    )
    assert via_http.exit_code == 75
    assert runner.invoke(args=["mailgate"], input=b"").exit_code == 65


def test_listener_answers_250_only_after_storing(app, committed_db):
    from integrations.email.lmtpd import make_controller
    from integrations.email.models import InboundEmail

    port = free_port()
    controller = make_controller(app, "127.0.0.1", port, lmtp=True)
    controller.start()
    try:
        with smtplib.LMTP("127.0.0.1", port) as client:
            client.ehlo_or_helo_if_needed = lambda: client.docmd("LHLO", "test")
            client.docmd("LHLO", "test")
            assert client.mail("bob@example.com")[0] == 250
            assert client.rcpt("incidents@cairn.test")[0] == 250
            code, reply = client.data(mail(1))
        assert code == 250 and reply.startswith(b"2.0.0 Stored as ")
        stored_id = int(reply.rsplit(b" ", 1)[1])
        committed_db.session.remove()
        row = committed_db.session.get(InboundEmail, stored_id)
        assert row.source == "lmtp" and row.envelope_to == "incidents@cairn.test" and row.status == "processed"
    finally:
        controller.stop()
    # SMTP mode, and a message over the size cap is refused permanently.
    app.config["CAIRN_MAIL_MAX_BYTES"] = "2000"
    controller = make_controller(app, "127.0.0.1", port, lmtp=False)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            assert client.sendmail("bob@example.com", ["incidents@cairn.test"], mail(2)) == {}
            # SIZE is announced, so the refusal comes at MAIL FROM already.
            with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as too_big:
                client.sendmail("bob@example.com", ["incidents@cairn.test"], mail(3) + b"x" * 5000)
            assert too_big.value.smtp_code == 552
    finally:
        controller.stop()
        app.config["CAIRN_MAIL_MAX_BYTES"] = None
    committed_db.session.remove()
    assert committed_db.session.scalar(select(func.count()).select_from(InboundEmail)) == 2


def test_listener_answers_451_when_it_cannot_store(committed_db):
    """A listener whose database is down says 451 (the MTA keeps the mail), never 250."""
    from cairn.app import create_app
    from cairn.config import Config
    from integrations.email.lmtpd import make_controller

    broken = create_app(
        Config(
            SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
            REDIS_URL=None,
            LOG_LEVEL="CRITICAL",
            **MAIL_CONFIG,
        )
    )
    port = free_port()
    controller = make_controller(broken, "127.0.0.1", port, lmtp=False)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("bob@example.com", ["incidents@cairn.test"], mail(1))
        assert refused.value.smtp_code == 451
    finally:
        controller.stop()


def test_imap_poller_stores_moves_and_remembers_the_uid(committed_db, imap_box):
    from integrations.email import imap
    from integrations.email.models import ImapState, InboundEmail

    for n in range(3):
        imap_box.append(mail(n))
    uids = imap_box.uids()
    account = imap_box.account()
    assert imap.poll(account) == {"stored": 3, "duplicates": 0, "moved": 3}
    assert imap_box.count("INBOX") == 0 and imap_box.count("Processed") == 3
    state = committed_db.session.get(ImapState, account.key)
    assert state.last_uid == max(uids) and state.uidvalidity and state.locked_by is None
    assert imap.poll(account) == {"stored": 0, "duplicates": 0, "moved": 0}
    # The same message put back (a user dragged it back): stored once, so a no-op.
    imap_box.append(mail(0))
    assert imap.poll(account) == {"stored": 0, "duplicates": 1, "moved": 1}
    rows = committed_db.session.scalars(select(InboundEmail)).all()
    assert len(rows) == 3 and {r.status for r in rows} == {"processed"} and {r.source for r in rows} == {"imap"}


def test_imap_runs_never_overlap(committed_db, imap_box):
    from integrations.email import imap

    imap_box.append(mail(1))
    account = imap_box.account()
    assert imap._acquire(account.key, "another-host:1")
    assert imap.poll(account) == {"locked": True}
    assert imap_box.count("INBOX") == 1
    imap._release(account.key, "another-host:1")
    assert imap.poll(account)["stored"] == 1


class DroppingProxy:
    """A TCP proxy to the IMAP server that cuts the connection once the client has sent its Nth
    UID FETCH: the way a network drop mid-fetch looks to the poller."""

    def __init__(self, target_port: int, drop_after_fetches: int):
        self.target = ("127.0.0.1", target_port)
        self.drop_after = drop_after_fetches
        self.fetches = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, from_client):
        try:
            while data := source.recv(65536):
                if from_client and b"UID FETCH" in data.upper():
                    self.fetches += 1
                    if self.fetches > self.drop_after:
                        raise OSError("dropped")
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.server.close()


def test_imap_connection_dropped_mid_fetch_loses_and_doubles_nothing(committed_db, imap_box):
    import imaplib

    from integrations.email import imap
    from integrations.email.models import ImapState, InboundEmail

    for n in range(5):
        imap_box.append(mail(n))
    uids = imap_box.uids()
    proxy = DroppingProxy(imap_box.info["port"], drop_after_fetches=2)
    account = imap.ImapAccount(**{**imap_box.account().__dict__, "port": proxy.port})
    try:
        with pytest.raises((imaplib.IMAP4.error, OSError)):
            imap.poll(account)
        committed_db.session.remove()
        assert committed_db.session.scalar(select(func.count()).select_from(InboundEmail)) == 2
        state = committed_db.session.get(ImapState, account.key)
        assert state.last_uid == uids[1] and state.locked_by is None  # the lease was released
        # The network is back: the rest is fetched, nothing twice, nothing lost.
        proxy.drop_after = 10**9
        result = imap.poll(account)
    finally:
        proxy.close()
    assert result["stored"] == 3 and result["duplicates"] == 0
    committed_db.session.remove()
    ids = committed_db.session.scalars(select(InboundEmail.message_id).order_by(InboundEmail.message_id)).all()
    assert ids == [f"src-{n}@example.com" for n in range(5)]
    assert imap_box.count("INBOX") == 0 and imap_box.count("Processed") == 5
