#!/usr/bin/env bash
# Installs what the browser tests (tests/browser) drive: Debian's chromium and
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver). Does nothing when both are
# there. Needs root (or sudo) and the distribution's package mirror.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
echo "install-browser: installing chromium and chromium-driver from the distribution" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "install-browser: not root and no sudo: install chromium and chromium-driver yourself" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q chromium chromium-driver >&2
