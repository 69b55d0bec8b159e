"""Mail fixtures: Cairn's mail settings, senders of raw messages, a real SMTP sink (aiosmtpd)."""

from __future__ import annotations

import socket

import pytest

from tests.peers import SmtpSink, free_port

MAIL_CONFIG = {
    "CAIRN_MAIL_ADDRESS": "helpdesk@cairn.test",
    "CAIRN_MAIL_ROUTES": "incidents@cairn.test=incident,requests@cairn.test=request:Service Desk",
    "CAIRN_MAIL_ALLOWED_DOMAINS": "example.com,example.org,customer.test,gmail.com,outlook.com,icloud.com",
    "CAIRN_MAIL_RATE_LIMIT": "20",
    "CAIRN_MAIL_SMTP_HOST": "",
}


@pytest.fixture(autouse=True)
def mail_config(app):
    """Cairn's mail settings for every test here; the whole config is restored afterwards, so a test
    that changes any setting leaves nothing behind for the other packages' tests."""
    saved = dict(app.config)
    app.config.update(MAIL_CONFIG)
    yield app.config
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def integration_headers(make):
    return make.headers("integration")


@pytest.fixture
def post_mail(client, integration_headers):
    """POST a raw message to the HTTP source; returns the JSON answer (asserting 202)."""

    def post(raw: bytes, expect: int = 202, **query):
        response = client.post(
            "/api/v1/inbound-email",
            data=raw,
            headers={**integration_headers, "Content-Type": "message/rfc822"},
            query_string=query,
        )
        assert response.status_code == expect, response.get_data(as_text=True)
        return response.get_json()

    return post


@pytest.fixture
def smtp_sink(app):
    sink = SmtpSink()
    sink.controller.start()
    saved = (app.config.get("CAIRN_MAIL_SMTP_HOST"), app.config.get("CAIRN_MAIL_SMTP_PORT"))
    app.config.update(CAIRN_MAIL_SMTP_HOST="127.0.0.1", CAIRN_MAIL_SMTP_PORT=str(sink.port))
    yield sink
    app.config["CAIRN_MAIL_SMTP_HOST"], app.config["CAIRN_MAIL_SMTP_PORT"] = saved
    sink.controller.stop()


DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
mail_location = maildir:{base}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


@pytest.fixture(scope="session")
def dovecot():
    """A private Dovecot IMAP server on a free port (config, mail and sockets in a temp dir)."""
    import getpass
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile
    import time

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        pytest.fail(
            "Dovecot is not installed, so the IMAP poller can't be tested: run `make test` as root "
            "(.ci/services.sh installs dovecot-imapd) or `apt-get install dovecot-imapd`."
        )
    base = tempfile.mkdtemp(prefix="cairn-dovecot-")
    os.chmod(base, 0o755)
    port = free_port()
    if os.getuid() == 0:
        names = {
            "login_user": "dovenull",
            "internal_user": "dovecot",
            "internal_group": "dovecot",
            "mail_user": "dovecot",
            "mail_group": "dovecot",
        }
        mail_uid = pwd.getpwnam("dovecot").pw_uid
    else:
        me = getpass.getuser()
        group = __import__("grp").getgrgid(os.getgid()).gr_name
        names = {"login_user": me, "internal_user": me, "internal_group": group, "mail_user": me, "mail_group": group}
        mail_uid = os.getuid()
    mail = os.path.join(base, "mail")
    os.makedirs(mail)
    os.chown(mail, mail_uid, -1)
    config = os.path.join(base, "dovecot.conf")
    with open(config, "w") as handle:
        handle.write(DOVECOT_CONF.format(base=base, port=port, uid=min(mail_uid, 100), **names))
    with open(os.path.join(base, "passwd"), "w") as handle:
        handle.write("cairn:{PLAIN}secret\n")
    process = subprocess.Popen([binary, "-F", "-c", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.poll() is not None else ""
                process.kill()
                pytest.fail(f"Dovecot did not start on port {port}: {output}")
            time.sleep(0.1)
    yield {"host": "127.0.0.1", "port": port, "user": "cairn", "password": "secret", "base": base}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def imap_box(dovecot):
    """A fresh INBOX (emptied) and a helper to append raw messages to it."""
    import imaplib

    conn = imaplib.IMAP4(dovecot["host"], dovecot["port"])
    conn.login(dovecot["user"], dovecot["password"])
    for folder in ("INBOX", "Processed"):
        conn.create(folder)
        typ, data = conn.select(folder)
        if int(data[0]):
            conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()

    class Box:
        info = dovecot

        def append(self, raw: bytes, folder: str = "INBOX"):
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data

        def count(self, folder: str) -> int:
            typ, data = conn.select(folder, readonly=True)
            return int(data[0])

        def uids(self, folder: str = "INBOX") -> list[int]:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("SEARCH", None, "ALL")
            return [int(u) for u in data[0].split()]

        def account(self, **kwargs):
            from integrations.email.imap import ImapAccount

            return ImapAccount(
                host=dovecot["host"],
                port=dovecot["port"],
                user=dovecot["user"],
                password=dovecot["password"],
                ssl=False,
                timeout=10,
                **kwargs,
            )

    yield Box()
    conn.logout()
