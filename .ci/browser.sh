#!/usr/bin/env bash
# Install what the browser tests need, if missing: Debian's chromium (Playwright's own browser
# download does not work on these machines) and Playwright for Python, which drives it
# through executable_path=/usr/bin/chromium. Run as root; safe to run again.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

PYTHON="${PYTHON:-python}"
if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "playwright>=1.45"
fi

chromium --version 2>/dev/null || true
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
