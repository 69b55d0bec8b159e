#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the test suite needs are reachable on 127.0.0.1:
# use running ones, start installed ones, install them with apt-get when root, else say what to install.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

pg_up() { have pg_isready && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
redis_up() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

apt_install() {
    if ! is_root || ! have apt-get; then
        echo "error: $* is missing. Install it (Debian/Ubuntu: apt-get install $*) or run make test as root." >&2
        exit 1
    fi
    echo "installing $* with apt-get ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_postgres() {
    if ! have pg_ctlcluster; then
        apt_install postgresql postgresql-client
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -1)
    if [ -z "$version" ]; then
        echo "error: PostgreSQL is installed but has no cluster; create one with pg_createcluster" >&2
        exit 1
    fi
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # The suite connects as postgres over TCP without a password, as on the CI machines.
    if ! grep -q "cairn-test trust" "$hba"; then
        sed -i "1i host all all 127.0.0.1/32 trust # cairn-test trust" "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
    echo "error: PostgreSQL did not come up on $PG_HOST:$PG_PORT" >&2
    exit 1
}

start_redis() {
    if ! have redis-server; then
        apt_install redis-server
    fi
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
    for _ in $(seq 1 30); do redis_up && return 0; sleep 0.5; done
    echo "error: Redis did not come up on 127.0.0.1:$REDIS_PORT" >&2
    exit 1
}

# Dovecot for the IMAP poller's test: only the binary; the test starts its own instance on a free
# port with a config in a temp dir, so a system service started by the package is stopped again.
ensure_dovecot() {
    if have dovecot || [ -x /usr/sbin/dovecot ]; then
        return 0
    fi
    if ! is_root || ! have apt-get; then
        echo "warning: dovecot is missing (apt-get install dovecot-imapd); the IMAP tests will fail" >&2
        return 0
    fi
    apt_install dovecot-imapd
    /usr/sbin/dovecot stop >/dev/null 2>&1 || true
}

# The real inventory agents and nmap for tests/integrations/agents (each runs once against a live
# test server; nmap scans 127.0.0.1 only).
ensure_discovery_tools() {
    local missing=()
    have fusioninventory-agent || missing+=(fusioninventory-agent)
    have ocsinventory-agent || missing+=(ocsinventory-agent)
    have nmap || missing+=(nmap)
    if [ ${#missing[@]} = 0 ]; then
        return 0
    fi
    if ! is_root || ! have apt-get; then
        echo "warning: ${missing[*]} missing (apt-get install ${missing[*]}); the agent and nmap tests will fail" >&2
        return 0
    fi
    apt_install "${missing[@]}"
}

# OpenLDAP (tests/kernel/directory: the tests start their own slapd on a free port with a generated
# config) and Prometheus Alertmanager (tests/integrations/events: started on free ports, its webhook
# pointed at the live test server). Only the binaries: system services the packages start are stopped.
ensure_directory_and_alerting() {
    local missing=()
    [ -x /usr/sbin/slapd ] || missing+=(slapd ldap-utils)
    have prometheus-alertmanager || missing+=(prometheus-alertmanager)
    if [ ${#missing[@]} = 0 ]; then
        return 0
    fi
    if ! is_root || ! have apt-get; then
        echo "warning: ${missing[*]} missing (apt-get install ${missing[*]}); the LDAP and Alertmanager tests will fail" >&2
        return 0
    fi
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
    apt_install "${missing[@]}"
    pkill -x slapd >/dev/null 2>&1 || true
    pkill -f "^/usr/bin/prometheus-alertmanager" >/dev/null 2>&1 || true
}

# The OpenID Connect provider of the sign-in tests: the `oidc-provider` npm package, pinned in
# tests/oidc/package-lock.json, installed into tests/oidc/node_modules (the tests start it with node).
ensure_oidc_provider() {
    if ! have node || ! have npm; then
        if ! is_root || ! have apt-get; then
            echo "warning: node and npm missing (apt-get install nodejs npm); the OpenID Connect tests will fail" >&2
            return 0
        fi
        apt_install nodejs npm
    fi
    local here
    here="$(cd "$(dirname "$0")/.." && pwd)/tests/oidc"
    if [ ! -f "$here/node_modules/oidc-provider/package.json" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
    fi
}

if ! have pg_isready && ! is_root; then
    echo "error: PostgreSQL client tools are missing (apt-get install postgresql)" >&2
    exit 1
fi
pg_up || start_postgres
redis_up || start_redis
ensure_dovecot
ensure_discovery_tools
ensure_directory_and_alerting
ensure_oidc_provider
bash "$(dirname "$0")/ensure_chromium.sh"
echo "services: PostgreSQL on $PG_HOST:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up; dovecot, chromium, the inventory agents, nmap, slapd and Alertmanager are installed"
