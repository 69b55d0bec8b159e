"""Knowledge search latency on PostgreSQL: 10k articles (target: p95 <= 50 ms).

    .venv/bin/python benchmarks/knowledge.py [--articles 10000] [--runs 300] [--keep]

A scratch database is migrated and bulk-loaded with articles whose titles (6 words) and Markdown
bodies (~180 words) are drawn from a 4,000-word vocabulary with a Zipf-like skew, so a common word is
in most articles and a rare one in a few (80% published, half of those for everyone). Each search is
timed through the whole Flask stack (test client: routing, auth, schema, SQL, serialisation; no
network) and p50/p95 are printed against the target:

- search as an agent: GET /articles?q= with one to three words (a mix of common and rare ones), the
  ranked first page of 50 and the count for X-Pagination
- search as a requester: the same, kept to published articles for everyone
- suggestions for a draft ticket: POST /articles/suggest with a title and a description
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402

DB_NAME = "cairn_bench_knowledge"
TARGET_MS = 50.0
CHUNK = 2000
SEED_WORDS = (  # noqa: SIM905
    "outlook password reset vpn printer laptop dock wifi network mailbox account locked token certificate "
    "driver update windows linux server database backup restore disk memory cpu slow crash error login "
    "browser proxy firewall license install uninstall teams sharepoint onedrive excel word screen monitor "
    "keyboard mouse battery charger bluetooth audio camera meeting calendar phone mobile sync cache "
    "profile"
).split()


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ter", "vo", "den", "sa", "rin", "po", "lex", "qua", "tor", "ni", "bel", "cor"]
    words = list(SEED_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def draw(rng: random.Random, words: list[str], n: int) -> list[str]:
    # Zipf-like: the k-th word is drawn about 1/k as often as the first
    return [words[min(len(words) - 1, int(rng.paretovariate(1.1)) - 1)] for _ in range(n)]


def load(db, n: int, rng: random.Random, words: list[str]) -> None:
    from tickets.knowledge.models import KnowledgeArticle
    from tickets.knowledge.render import to_html

    now = datetime.now(UTC)
    table = KnowledgeArticle.__table__
    rows = []
    for i in range(n):
        title = " ".join(draw(rng, words, 6)).capitalize() + f" {i}"
        paragraphs = [" ".join(draw(rng, words, 60)) for _ in range(3)]
        body = f"{paragraphs[0]}.\n\n1. **{paragraphs[1]}**\n2. `{words[i % 50]}`\n\n{paragraphs[2]}."
        state = "published" if rng.random() < 0.8 else rng.choice(("draft", "review", "retired"))
        rows.append(
            {"title": title[:200], "body": body, "body_html": to_html(body), "state": state,
             "visibility": rng.choice(("agents", "everyone")), "revision": 1, "resolved_count": rng.randint(0, 40),
             "version": 1, "created_at": now, "updated_at": now,
             "published_at": now if state == "published" else None}
        )  # fmt: skip
    with db.engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(table), rows[start : start + CHUNK])


def timed(label, runs, call, expect=200):
    for i in range(5):
        call(i)
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        response = call(i)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != expect:
            raise SystemExit(f"{label}: HTTP {response.status_code}: {response.get_data(as_text=True)[:500]}")
    samples.sort()
    p50 = statistics.median(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    verdict = "ok" if p95 <= TARGET_MS else "OVER"
    print(
        f"{label:<52} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({runs} runs, p95 target {TARGET_MS:.0f} ms: {verdict})"
    )
    return p50, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    rng = random.Random(20)

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.auth.services import create_token, create_user
    from cairn.config import Config
    from cairn.db import db

    url = scratch.fresh_database(DB_NAME)
    instance = Path(tempfile.mkdtemp(prefix="cairn-bench-knowledge-"))
    app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance, REDIS_URL=None, LOG_LEVEL="WARNING"))
    words = vocabulary(rng)
    try:
        with app.app_context():
            upgrade(revision="heads")
            started = time.perf_counter()
            load(db, args.articles, rng, words)
            headers = {}
            for role in ("agent", "requester"):
                user = create_user(f"bench-{role}@example.com", role)
                _, secret = create_token(user)
                headers[role] = {"Authorization": f"Bearer {secret}"}
            db.session.commit()
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
                count = conn.scalar(text("SELECT count(*) FROM knowledge_article"))
            db.session.remove()
        print(f"loaded {count} articles in {time.perf_counter() - started:.0f} s\n")
        client = app.test_client()
        queries = []
        for _ in range(args.runs + 5):
            n = rng.choice((1, 1, 2, 2, 3))
            # half the words common (top 200), half from anywhere in the vocabulary
            queries.append(
                " ".join(rng.choice(words[:200]) if rng.random() < 0.5 else rng.choice(words) for _ in range(n))
            )

        def search(role):
            return lambda i: client.get("/api/v1/articles", query_string={"q": queries[i]}, headers=headers[role])

        timed("search as an agent: GET /articles?q= (page of 50)", args.runs, search("agent"))
        timed("search as a requester (published, for everyone)", args.runs, search("requester"))

        def suggest(i):
            body = {"title": f"{queries[i]} does not work", "description": " ".join(draw(rng, words, 30))}
            return client.post("/api/v1/articles/suggest", json=body, headers=headers["requester"])

        timed("suggestions for a draft: POST /articles/suggest", args.runs, suggest)
        with app.app_context():
            matches = db.session.execute(
                text("SELECT count(*) FROM search_article WHERE document @@ to_tsquery('simple', :q)"),
                {"q": f"'{words[0]}':*"},
            ).scalar()
            db.session.remove()
        print(f"\n(the most common word, {words[0]!r}, is in {matches} articles)")
    finally:
        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            scratch.drop_database(DB_NAME)


if __name__ == "__main__":
    main()
