#!/usr/bin/env bash
# The web desk's browser assets, vendored: the exact versions pinned in web/vendor/package.json and
# package-lock.json are installed with npm in a temp dir, and only their built files (plus each
# package's licence) are copied to web/static/vendor/<package>/, with SHA256SUMS beside them.
# No Node build step, nothing loaded from a CDN at run time; node_modules never enters the tree.
#
#   web/vendor/refresh.sh           install what package-lock.json pins (npm ci), copy, write SHA256SUMS
#   web/vendor/refresh.sh --update  resolve package.json afresh (npm install), write package-lock.json
#                                   back, then copy as above (after changing a version in package.json)
#   web/vendor/refresh.sh --check   offline: the copied files match SHA256SUMS, no file is unlisted,
#                                   and package-lock.json holds the versions package.json pins
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEST="$ROOT/web/static/vendor"

# package : file inside the npm package that the browser loads (copied under its base name)
FILES=(
    "htmx.org:dist/htmx.min.js"
    "axe-core:axe.min.js"
    "cytoscape:dist/cytoscape.min.js"
    "cytoscape-dagre:cytoscape-dagre.js"
    "dagre:dist/dagre.min.js"
)

packages() { local entry; for entry in "${FILES[@]}"; do echo "${entry%%:*}"; done | sort -u; }

die() { echo "refresh.sh: $*" >&2; exit 1; }

# package.json pins exact versions, and the lock file holds exactly those (python3: no Node needed).
check_pins() {
    python3 - "$HERE/package.json" "$HERE/package-lock.json" <<'PY'
import json, os, re, sys

pkg_path, lock_path = sys.argv[1:]
pins = json.load(open(pkg_path)).get("dependencies", {})
lock = json.load(open(lock_path)).get("packages", {}) if os.path.exists(lock_path) else None
bad = 0
for name, version in pins.items():
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        print(f'{name}: "{version}" is not an exact version', file=sys.stderr)
        bad += 1
    if lock is not None:
        locked = lock.get(f"node_modules/{name}", {}).get("version")
        if locked != version:
            print(f"{name}: package.json pins {version}, package-lock.json has {locked or 'nothing'}", file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
}

check() {
    [ -f "$DEST/SHA256SUMS" ] || die "$DEST/SHA256SUMS is missing: run web/vendor/refresh.sh"
    check_pins || die "package.json and package-lock.json disagree: run web/vendor/refresh.sh --update"
    (cd "$DEST" && sha256sum --check --strict --quiet SHA256SUMS) ||
        die "web/static/vendor does not match SHA256SUMS: run web/vendor/refresh.sh"
    local listed actual
    listed="$(cd "$DEST" && awk '{ sub(/^\*/, "", $2); print $2 }' SHA256SUMS | sort)"
    actual="$(cd "$DEST" && for p in $(packages); do [ -d "$p" ] && find "$p" -type f; done | sort)"
    if [ "$listed" != "$actual" ]; then
        diff <(echo "$listed") <(echo "$actual") >&2 || true
        die "files in web/static/vendor differ from those SHA256SUMS lists (< listed, > present)"
    fi
    echo "web/static/vendor: $(echo "$listed" | wc -l) files match SHA256SUMS"
}

refresh() {
    local mode="$1"
    command -v npm >/dev/null || die "npm is missing (Debian: apt-get install npm)"
    check_pins >/dev/null 2>&1 || [ "$mode" = update ] || [ ! -f "$HERE/package-lock.json" ] ||
        { check_pins || true; die "package.json and package-lock.json disagree: run with --update"; }
    work="$(mktemp -d)" # global: the EXIT trap runs after this function returned
    trap 'rm -rf "$work"' EXIT
    cp "$HERE/package.json" "$work/"
    # No lifecycle scripts run, and the lock file records integrity hashes but no registry address,
    # so it installs from whatever registry npm is configured with.
    local npm_flags=(--no-audit --no-fund --ignore-scripts --omit-lockfile-registry-resolved --loglevel=warn)
    if [ "$mode" = update ] || [ ! -f "$HERE/package-lock.json" ]; then
        (cd "$work" && npm install "${npm_flags[@]}")
        cp "$work/package-lock.json" "$HERE/package-lock.json"
    else
        cp "$HERE/package-lock.json" "$work/"
        (cd "$work" && npm ci "${npm_flags[@]}")
    fi

    local stage="$work/out" entry package file licence found
    mkdir -p "$stage"
    for entry in "${FILES[@]}"; do
        package="${entry%%:*}" file="${entry#*:}"
        [ -f "$work/node_modules/$package/$file" ] || die "$package has no $file (did its layout change?)"
        mkdir -p "$stage/$package"
        cp "$work/node_modules/$package/$file" "$stage/$package/"
    done
    for package in $(packages); do
        found=0
        for licence in "$work/node_modules/$package"/{LICEN[CS]E,LICEN[CS]E[.-]*,COPYING*,license,license.md,license.txt}; do
            [ -f "$licence" ] || continue
            cp "$licence" "$stage/$package/"
            found=1
        done
        [ "$found" = 1 ] || die "$package ships no LICENSE file"
    done

    mkdir -p "$DEST"
    for package in $(packages); do
        rm -rf "${DEST:?}/$package"
        cp -R "$stage/$package" "$DEST/$package"
    done
    (cd "$DEST" && for p in $(packages); do find "$p" -type f; done | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
    for package in $(packages); do
        echo "$package $(node -p "require('$work/node_modules/$package/package.json').version")"
    done
    check
}

case "${1:-}" in
    "") refresh ci ;;
    --update) refresh update ;;
    --check) check ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown option $1 (use --update, --check or no option)" ;;
esac
