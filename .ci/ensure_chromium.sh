#!/usr/bin/env bash
# Debian's Chromium (and fonts for its screenshots) for the web desk's Playwright tests (tests/web).
# Playwright never downloads a browser here: the tests launch /usr/bin/chromium.
# Present: nothing to do. Missing: install it with apt-get when root, else say what to install.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
# fonts-liberation: the metric-compatible sans/serif/mono faces pages ask for by name (a recommend of
# chromium-common that --no-install-recommends would leave out).
FONTS=(fonts-dejavu-core fonts-liberation)

missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
for font in "${FONTS[@]}"; do
    dpkg-query -W -f='${Status}' "$font" 2>/dev/null | grep -q "ok installed" || missing+=("$font")
done
if [ ${#missing[@]} = 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    if [ -x "$CHROMIUM" ]; then
        echo "warning: ${missing[*]} missing; screenshots may use other fonts: apt-get install ${missing[*]}" >&2
        exit 0
    fi
    echo "error: $CHROMIUM is missing; the web tests need it: apt-get install chromium ${FONTS[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]} with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ ! -x "$CHROMIUM" ]; then
    echo "error: apt-get installed ${missing[*]} but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "chromium: $("$CHROMIUM" --version 2>/dev/null)"
