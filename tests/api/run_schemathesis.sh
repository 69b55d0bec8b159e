#!/usr/bin/env bash
# The OpenAPI document against the running service: schemathesis, every check, every phase
# (examples, coverage, fuzzing, stateful), against gunicorn on a fresh PostgreSQL database, with a
# fixed seed so that a run is reproducible. Fails on any 5xx, any response that breaks its schema,
# any undocumented status, content type or header.
#
#   tests/api/run_schemathesis.sh [extra schemathesis options]
#
# Environment: CAIRN_TEST_PG_URL (the admin URL the suite uses), ST_SEED, ST_MAX_EXAMPLES, ST_WORKERS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$(cd "${BIN:-$ROOT/.venv/bin}" && pwd)
PG_ADMIN_URL="${CAIRN_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
SEED="${ST_SEED:-20240611}"
# 30 generated cases per operation in the fuzzing phase (the coverage phase tries every boundary
# value besides): with the fixed seed every run repeats the same cases, and cases 31-60 cost make
# test about 200 s (the fuzzing phase took 411 s alone with 60) for the same inputs each time.
# ST_MAX_EXAMPLES=200 make test-api goes deeper.
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
# One worker: with two, Hypothesis describes its strategies from two threads at once and CPython
# 3.11's compiler is not thread-safe there ("AST constructor recursion depth mismatch").
WORKERS="${ST_WORKERS:-1}"
DB_NAME="cairn_api_$$"
WORK=$(mktemp -d -t cairn-api-XXXXXX)
SERVER_PID=""

pg() {  # pg create|drop NAME: a database on the suite's PostgreSQL (prints its URL on create)
    "$BIN/python" - "$PG_ADMIN_URL" "$1" "$2" <<'EOF'
import sys
from sqlalchemy import create_engine, text
admin_url, action, name = sys.argv[1:]
engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if action == "create":
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        print(admin_url.rsplit("/", 1)[0] + f"/{name}")
engine.dispose()
EOF
}

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    pg drop "$DB_NAME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL
DATABASE_URL=$(pg create "$DB_NAME")
export CAIRN_INSTANCE_PATH="$WORK/instance" SECRET_KEY="schemathesis-$$" CAIRN_LOG_LEVEL=WARNING
# No Redis: jobs run inline and the embedded runner does the periodic work, as `make run` does.
unset REDIS_URL
# Tokens and users are read from the database on every request: the run changes users.
export CAIRN_TOKEN_REMEMBER_SECONDS=0
# The run sets passwords by the thousand (users, resets): argon2id's cheapest parameters, as the suite.
export CAIRN_PASSWORD_HASH_PROFILE=CHEAPEST

cd "$ROOT"
"$BIN/cairn" db upgrade >"$WORK/setup.log" 2>&1
"$BIN/cairn" users create schemathesis@example.com --role admin --name Schemathesis >>"$WORK/setup.log" 2>&1
if [ "${ST_DEMO:-1}" = 1 ]; then
    # The demo estate: ids that exist, so that operations on one object reach past the 404.
    "$BIN/cairn" seed-demo >>"$WORK/setup.log" 2>&1
fi
TOKEN=$("$BIN/cairn" tokens create schemathesis@example.com --name schemathesis 2>>"$WORK/setup.log" | tail -n 1)

# No request-line or header-size limit: past gunicorn's, gunicorn itself answers 414/431 in HTML
# before Cairn sees the request; the document describes Cairn's answers, not its HTTP server's.
"$BIN/gunicorn" --chdir "$ROOT" --bind "127.0.0.1:$PORT" --workers 2 --threads 4 --timeout 60 \
    --limit-request-line 0 --limit-request-field_size 0 --no-control-socket \
    --error-logfile "$WORK/gunicorn.log" wsgi:app >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Operations left out, each for a reason:
#  - DELETE /tokens/{token_id}: the run's only credential is a token; revoking it (its id is 1, a
#    boundary value every phase tries) would turn every later case into a 401.
status=0
cd "$WORK"  # schemathesis keeps its crash cache in .schemathesis/ of the working directory
PYTHONPATH="$ROOT/tests/api" SCHEMATHESIS_HOOKS=schemathesis_hooks \
"$BIN/schemathesis" --config-file "$ROOT/tests/api/schemathesis.toml" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
    --wait-for-schema 30 \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --generation-database none \
    --workers "$WORKERS" \
    --request-timeout 30 \
    --exclude-path-regex '/tokens/\{token_id\}$' \
    --no-color \
    "$@" || status=$?

if [ "$status" -ne 0 ]; then
    echo "--- server log (last 80 lines) ---" >&2
    tail -n 80 "$WORK/gunicorn.log" "$WORK/server.log" >&2 || true
fi
exit "$status"
