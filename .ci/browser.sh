#!/usr/bin/env bash
# Install what the browser tests need, if missing: Debian's chromium (Playwright's own browser
# download does not work on these machines), a CJK font (Debian's chromium brings none, so every
# Chinese character would be drawn as a box) and Playwright for Python, which drives chromium
# through executable_path=/usr/bin/chromium. Run as root; safe to run again.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-noto-cjk)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python}"
if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "playwright>=1.45"
fi

chromium --version 2>/dev/null || true
fonts="$(fc-list :lang=zh family 2>/dev/null || true)"
if [[ $fonts == *"Noto Sans CJK"* ]]; then echo "CJK font: Noto Sans CJK"; else echo "no CJK font found" >&2; fi
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
