#!/usr/bin/env bash
# ctest entry point of browser.web_ui: the embedded web UI in headless
# Debian chromium, driven by playwright-core (web_ui.test.mjs, run with
# node's built-in test runner) against the real `xnai serve`.
#
# Usage: run.sh /path/to/xnai SCREENSHOT_DIR
#
# Installs the pinned playwright-core from package-lock.json with `npm ci`
# into node_modules/ here, only when node_modules is missing or older than
# package-lock.json (playwright-core downloads no browser). Exit codes: the
# test runner's; 77 (ctest's skip code) when node, npm or chromium is not
# installed (scripts/install-deps installs them); 1 when `npm ci` fails.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 /path/to/xnai SCREENSHOT_DIR" >&2
  exit 2
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: browser.web_ui needs '$tool', which is not installed" \
         "(scripts/install-deps installs Node.js and npm)"
    exit 77
  fi
done
chromium_bin="${XNAI_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  echo "SKIPPED: browser.web_ui needs chromium at $chromium_bin, which is not installed" \
       "(scripts/install-deps installs Debian's chromium; XNAI_CHROMIUM overrides the path)"
  exit 77
fi

if [ ! -x "$1" ]; then
  echo "run.sh: $1 is not an executable xnai binary" >&2
  exit 1
fi
xnai_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
mkdir -p "$2"
screenshot_dir="$(cd "$2" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

cd "$here"

# The stamp is written only after `npm ci` succeeded, so an interrupted
# install (which leaves a fresh but incomplete node_modules) is redone.
stamp=node_modules/.xnai-npm-ci-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "run.sh: npm ci (node $(node --version), npm $(npm --version 2>/dev/null))"
  if ! npm ci --no-audit --no-fund; then
    echo "FAILED: browser.web_ui: 'npm ci' in $here failed (see npm's error above);" \
         "the npm registry must be reachable to install playwright-core" >&2
    exit 1
  fi
  touch "$stamp"
fi

# No XNAI_* configuration of the caller reaches the test; only the binary
# under test, the browser and where the screenshots go.
while IFS= read -r name; do
  unset "$name"
done < <(env | sed -n 's/^\(XNAI_[A-Za-z0-9_]*\)=.*/\1/p')

export XNAI_BIN="$xnai_bin" XNAI_CHROMIUM="$chromium_bin" XNAI_SCREENSHOT_DIR="$screenshot_dir"
echo "run.sh: screenshots in $screenshot_dir"
exec node --test --test-reporter=spec web_ui.test.mjs
