"""Directory sync and sign-in benchmark against a real slapd (tests/kernel/directory/slapd.py).

    .venv/bin/python benchmarks/directory.py [--people 2000]

Starts its own slapd (StartTLS with a CA it makes), adds ``--people`` entries with e-mail and
password, half of them in a mapped group, on a scratch SQLite database. Printed: the first sync
(creates everyone), a second one (nothing changed: no writes), and one sign-in's directory work
(service bind, search, bind as the person, groups), averaged over 20.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kernel.directory.slapd import GROUPS, PEOPLE, ROOT_DN, ROOT_PASSWORD, group, start_slapd  # noqa: E402


def _ldif(people: int) -> str:
    entries = "\n\n".join(
        f"dn: uid=u{i},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: u{i}\ncn: User {i}\nsn: {i}\n"
        f"mail: u{i}@example.org\nuserPassword: pw-{i}"
        for i in range(people)
    )
    members = "\n".join(f"member: uid=u{i},{PEOPLE}" for i in range(0, people, 2))
    return f"{entries}\n\ndn: cn=many,{GROUPS}\nobjectClass: groupOfNames\ncn: many\n{members}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cairn-bench-directory-"))
    slapd = start_slapd(scratch / "slapd")
    try:
        command = ["/usr/bin/ldapadd", "-x", "-H", slapd.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD]
        subprocess.run(command, input=_ldif(args.people).encode(), check=True, capture_output=True)
        from flask_migrate import upgrade

        from cairn.app import create_app
        from cairn.config import Config

        url = f"sqlite:///{scratch / 'bench.db'}"
        app = create_app(
            Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=scratch, LOG_LEVEL="WARNING", **slapd.settings())
        )
        with app.app_context():
            upgrade(revision="heads")
            from cairn.db import db
            from cairn.directory import client
            from cairn.directory.services import create_mapping, sync

            create_mapping(group("many"), role="agent")
            db.session.commit()
            for label in ("first sync (creates)", "second sync (unchanged)"):
                started = time.perf_counter()
                report = sync()
                db.session.commit()
                print(f"{label}: {time.perf_counter() - started:.2f} s {report.counts}")
            config = client.DirectoryConfig.from_settings()
            started = time.perf_counter()
            for i in range(20):
                entry, _reason = client.authenticate(config, f"u{i}@example.org", f"pw-{i}")
                assert entry is not None
            each_ms = (time.perf_counter() - started) / 20 * 1000
            print(f"sign-in (service bind, search, bind, groups) over StartTLS: {each_ms:.0f} ms")
    finally:
        slapd.stop()


if __name__ == "__main__":
    main()
