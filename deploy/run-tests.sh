#!/usr/bin/env bash
# Installs every test prerequisite that is missing (Debian packages, a virtualenv with the
# project and its test extra, TypeScript from npm), runs the static checks (mypy --strict,
# ruff, tsc --checkJs over web/) and then the whole test suite. Safe to run again.
#
#   bash deploy/run-tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server postgresql chromium firefox-esr poppler-utils sox
  # Telephony peers we did not write: sipp (SIPREC), GStreamer and ffmpeg (plain RTP senders)
  sip-tester gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good ffmpeg
  # TURN for the relay-only listener test (coturn, as in deploy/compose.yaml)
  coturn)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The OIDC tests run a real provider (npm package oidc-provider) on Node.js.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

# The pages' browser tests drive Firefox (WebDriver BiDi) and Chromium with npm puppeteer-core
# (tests/browser; it downloads no browser).
if [ ! -d tests/browser/node_modules ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# Static checks first: each one fails the run.
export PATH="$PWD/.venv/bin:$PATH"
echo "== mypy --strict live"
.venv/bin/python -m mypy live
echo "== ruff check live tests"
.venv/bin/python -m ruff check live tests
echo "== tsc --noEmit --checkJs (web/)"
# TypeScript comes from npm, pinned by tools/jscheck/package-lock.json, into a local node_modules.
(cd tools/jscheck && { [ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund --silent; } \
  && node_modules/.bin/tsc --noEmit -p tsconfig.json \
  && node_modules/.bin/tsc --noEmit -p tsconfig.strict.json)

# Tests start their own redis-server and PostgreSQL on free ports; nothing shared is used.
exec .venv/bin/python -m pytest "$@"
