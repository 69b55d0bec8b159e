"""Ticket numbers stay unique when many requests open tickets at once (real commits, real threads)."""

import threading
from collections import Counter

from cairn.auth.services import create_token, create_user

THREADS = 8
PER_THREAD = 15


def test_parallel_creators_get_unique_numbers(app, committed_db):
    user = create_user("parallel@example.com", "agent")
    _, secret = create_token(user)
    committed_db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    numbers: list[str] = []
    failures: list = []
    start = threading.Barrier(THREADS)
    lock = threading.Lock()

    def creator(i):
        client = app.test_client()
        start.wait()
        for j in range(PER_THREAD):
            kind = ("incident", "change")[j % 2]
            r = client.post("/api/v1/tickets", json={"kind": kind, "title": f"t{i}-{j}"}, headers=headers)
            with lock:
                if r.status_code == 201:
                    numbers.append(r.json["number"])
                else:
                    failures.append((r.status_code, r.json))

    threads = [threading.Thread(target=creator, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(numbers) == THREADS * PER_THREAD
    duplicates = [n for n, c in Counter(numbers).items() if c > 1]
    assert duplicates == []
    by_prefix = Counter(n[:3] for n in numbers)
    incidents_per_thread = len(range(0, PER_THREAD, 2))
    assert by_prefix == {"INC": THREADS * incidents_per_thread, "CHG": THREADS * (PER_THREAD - incidents_per_thread)}
    assert all(len(n) == 10 and n[3:].isdigit() for n in numbers)
