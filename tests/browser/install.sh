#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the report's headless-browser test.
# Prints the browser's path. Installs with apt when missing (root only); exits 3 and says why
# when it cannot, so that the test skips with that reason.
set -euo pipefail
find_browser() { command -v chromium || command -v chromium-browser || true; }
browser=$(find_browser)
if [ -z "$browser" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "install.sh: Chromium is not installed and cannot be (needs root and apt-get)" >&2
        exit 3
    fi
    log=$(mktemp -t infscale-chromium-apt.XXXXXX)
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1 \
    || { apt-get update -qq >>"$log" 2>&1 &&
         apt-get install -y -qq --no-install-recommends chromium >>"$log" 2>&1; } \
    || { echo "install.sh: apt-get install chromium failed, see $log" >&2; exit 3; }
    browser=$(find_browser)
fi
echo "$browser"
