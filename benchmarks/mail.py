"""Mail intake throughput and worst cases on PostgreSQL with real RQ workers.

    .venv/bin/python benchmarks/mail.py [--messages 5000] [--workers 1 2] [--keep]

For each worker count: a scratch database is migrated, N varied messages (new tickets from a few
hundred senders, replies by References and by subject tag, Outlook/Gmail/Apple shapes, HTML-only
mail, small attachments, Latin-1 bodies, auto-replies and bulk mail) are posted through the HTTP
source (the whole Flask stack: auth, size cap, store, enqueue), then `cairn worker --burst` processes
run them. Printed: the HTTP store rate, and messages per second stored-to-ticketed, measured from the
first to the last processed_at the workers wrote (worker start-up is not counted).

Then, inline: the time to store and process one 10 MB message with attachments and one 2 MB HTML
body. Targets: >= 100 messages/s with two workers; no single message over 2 s. Notifications are
queued to a queue no worker here listens to (they are SMTP-bound and measured separately).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402

REDIS_URL = os.environ.get("CAIRN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB_NAME = "cairn_bench_mail"
QUEUE = "bench-mail"
TARGET_RATE = 100.0
TARGET_SECONDS = 2.0
SETTINGS = {
    "CAIRN_MAIL_ADDRESS": "helpdesk@bench.test",
    "CAIRN_MAIL_ROUTES": "incidents@bench.test=incident,requests@bench.test=request",
    "CAIRN_MAIL_ALLOWED_DOMAINS": "*",
    "CAIRN_MAIL_RATE_LIMIT": "0",
    "CAIRN_MAIL_QUEUE": "bench-mail-notify",
    "CAIRN_QUEUE_NAME": QUEUE,
}


def fresh_database() -> str:
    return scratch.fresh_database(DB_NAME)


def drop_database() -> None:
    scratch.drop_database(DB_NAME)


def varied_messages(count: int, rng: random.Random) -> list[bytes]:
    """Mostly new tickets, a third follow-ups, some noise; shapes of the common clients."""
    out: list[bytes] = []
    sent: list[tuple[str, str, str]] = []  # (message id, sender, subject)
    senders = [f"user{i}@corp{i % 7}.example" for i in range(400)]
    for i in range(count):
        roll = rng.random()
        sender = rng.choice(senders)
        msgid = f"bench-{i}-{rng.randrange(10**9)}@corp.example"
        headers = [
            f"From: User {i} <{sender}>",
            f"To: {rng.choice(['incidents', 'requests'])}@bench.test",
            f"Message-ID: <{msgid}>",
            "MIME-Version: 1.0",
            "Date: Tue, 17 Nov 2026 09:00:00 +0100",
        ]
        if roll < 0.25 and sent:
            ref, ref_sender, ref_subject = rng.choice(sent)
            headers += [f"Subject: Re: {ref_subject}", f"In-Reply-To: <{ref}>", f"References: <{ref}>"]
            headers[0] = f"From: {ref_sender}"
            body = f"Still broken after step {i}.\n\nOn Tue, 17 Nov 2026, someone wrote:\n> earlier text\n> more\n"
            out.append(_plain(headers, body))
            continue
        if roll < 0.32:
            headers += ["Subject: Automatic reply: away", "Auto-Submitted: auto-replied"]
            out.append(_plain(headers, "I am out of the office."))
            continue
        if roll < 0.36:
            headers += ["Subject: Newsletter", "Precedence: bulk"]
            out.append(_plain(headers, "News."))
            continue
        subject = f"{rng.choice(['Printer', 'VPN', 'Laptop', 'Outlook', 'Wifi', 'Badge'])} problem {i}"
        headers.append(f"Subject: {subject}")
        sent.append((msgid, sender, subject))
        if roll < 0.5:
            html = "<html><body>" + "".join(f"<p>Line {k} of the report, <b>bold</b>.</p>" for k in range(40))
            out.append(_join(headers + ["Content-Type: text/html; charset=utf-8"], html + "</body></html>"))
        elif roll < 0.65:
            out.append(_with_attachment(headers, f"Screenshot attached for {subject}.", rng.randbytes(20_000)))
        elif roll < 0.75:
            latin = f"Grüße, der {subject} ist kaputt.".encode("latin-1")
            raw = _join(
                headers + ["Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: 8bit"], ""
            )
            out.append(raw + latin + b"\r\n")
        else:
            out.append(_alternative(headers, f"Hello,\n\n{subject} since this morning.\n\nRegards"))
    return out


def _join(headers: list[str], body: str) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n").encode()


def _plain(headers, body):
    return _join(headers + ["Content-Type: text/plain; charset=utf-8"], body)


def _alternative(headers, body):
    b = "alt-boundary-42"
    parts = (
        f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body}</p>\r\n--{b}--"
    )
    return _join(headers + [f'Content-Type: multipart/alternative; boundary="{b}"'], parts)


def _with_attachment(headers, body, data: bytes, name="screenshot.png", count=1):
    b = "mixed-boundary-42"
    encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
    parts = f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    for k in range(count):
        parts += (
            f'--{b}\r\nContent-Type: image/png; name="{k}-{name}"\r\nContent-Transfer-Encoding: base64\r\n'
            f'Content-Disposition: attachment; filename="{k}-{name}"\r\n\r\n{encoded}'
        )
    return _join(headers + [f'Content-Type: multipart/mixed; boundary="{b}"'], parts + f"--{b}--")


def make_app(database_url: str, instance: str, redis: str | None):
    from cairn.app import create_app
    from cairn.config import Config

    return create_app(
        Config(
            SQLALCHEMY_DATABASE_URI=database_url, INSTANCE_PATH=instance, REDIS_URL=redis, LOG_LEVEL="ERROR", **SETTINGS
        )
    )


def run_throughput(messages: list[bytes], workers: int, instance: str) -> dict:
    import redis

    from cairn.auth.services import create_token, create_user
    from cairn.db import db
    from integrations.email.models import InboundEmail

    database_url = fresh_database()
    redis.Redis.from_url(REDIS_URL).flushdb()
    app = make_app(database_url, instance, REDIS_URL)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
        _, secret = create_token(create_user("gate@bench.test", "integration"))
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"}
    started = time.perf_counter()
    for raw in messages:
        response = client.post("/api/v1/inbound-email", data=raw, headers=headers)
        assert response.status_code == 202, response.get_data(as_text=True)
    store_seconds = time.perf_counter() - started
    env = {
        **os.environ,
        **SETTINGS,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CAIRN_INSTANCE_PATH": instance,
        "CAIRN_LOG_LEVEL": "ERROR",
    }
    cairn = str(Path(sys.executable).with_name("cairn"))
    procs = [
        subprocess.Popen(
            [cairn, "worker", "--burst", "--queue", QUEUE],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.wait(timeout=3600)
    with app.app_context():
        first, last = db.session.execute(
            select(func.min(InboundEmail.processed_at), func.max(InboundEmail.processed_at))
        ).one()
        statuses = dict(
            db.session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status)).all()
        )
        outcomes = dict(
            db.session.execute(select(InboundEmail.outcome, func.count()).group_by(InboundEmail.outcome)).all()
        )
        db.session.remove()
        db.engine.dispose()
    seconds = (last - first).total_seconds()
    return {
        "workers": workers,
        "store_rate": len(messages) / store_seconds,
        "rate": len(messages) / seconds,
        "seconds": seconds,
        "statuses": statuses,
        "outcomes": outcomes,
    }


def run_big(instance: str) -> dict:
    from cairn.db import db
    from integrations.email import intake

    database_url = fresh_database()
    app = make_app(database_url, instance, None)
    results = {}
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
        headers = ["From: Big Sender <big@corp.example>", "To: incidents@bench.test", "MIME-Version: 1.0"]
        rng = random.Random(7)
        big = _with_attachment(
            headers + ["Subject: Logs", "Message-ID: <big-1@corp.example>"],
            "Logs attached.",
            rng.randbytes(2_450_000),
            name="log.bin",
            count=3,
        )
        html = "<html><body>" + "".join(
            f"<div class='row'><p>Row {k}: <b>value</b> <a href='https://x.example/{k}'>link</a></p></div>"
            for k in range(26_000)
        )
        html_mail = _join(
            headers + ["Subject: Report", "Message-ID: <big-2@corp.example>", "Content-Type: text/html; charset=utf-8"],
            html + "</body></html>",
        )
        for label, raw in (("10 MB with attachments", big), ("2 MB HTML body", html_mail)):
            started = time.perf_counter()
            row, _ = intake.store(raw, source="http")
            db.session.commit()
            stored = time.perf_counter()
            status = intake.process(row.id)
            db.session.commit()
            done = time.perf_counter()
            results[label] = {
                "bytes": len(raw),
                "store": stored - started,
                "process": done - stored,
                "status": status,
                "reason": row.reason,
            }
        db.session.remove()
        db.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument(
        "--latency",
        action="store_true",
        help="Only accept-to-processed latency at 100 msg/s in the deployed topology (benchmarks/deployed.py).",
    )
    args = parser.parse_args()
    if args.latency:
        from deployed import mail_latency

        mail_latency(100.0, 20.0)
        return
    import tempfile

    instance = tempfile.mkdtemp(prefix="cairn-bench-mail-")
    messages = varied_messages(args.messages, random.Random(42))
    print(f"mail intake: {len(messages)} messages, {sum(map(len, messages)) / 1e6:.1f} MB, PostgreSQL + RQ")
    for workers in args.workers:
        r = run_throughput(messages, workers, instance)
        verdict = (
            "" if workers != 2 else ("  OK" if r["rate"] >= TARGET_RATE else f"  BELOW the {TARGET_RATE:.0f}/s target")
        )
        print(
            f"  {workers} worker(s): stored via HTTP {r['store_rate']:.0f}/s; stored->ticketed {r['rate']:.0f}/s "
            f"({r['seconds']:.1f} s){verdict}"
        )
        print(f"    statuses {r['statuses']}, outcomes {r['outcomes']}")
    for label, r in run_big(instance).items():
        total = r["store"] + r["process"]
        verdict = "OK" if total <= TARGET_SECONDS else f"OVER the {TARGET_SECONDS:.0f} s target"
        print(
            f"  one {label} ({r['bytes'] / 1e6:.1f} MB): store {r['store'] * 1000:.0f} ms, "
            f"process {r['process'] * 1000:.0f} ms, {r['status']}  {verdict}"
        )
    if not args.keep:
        drop_database()


if __name__ == "__main__":
    main()
