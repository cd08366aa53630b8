#!/usr/bin/env bash
# ctest entry point of integration.openai_client: xnai's OpenAI-compatible API
# driven by the official `openai` npm client (openai_client.test.mjs, run with
# node's built-in test runner).
#
# Usage: run.sh /path/to/xnai
#
# Installs the pinned client from package-lock.json with `npm ci` into
# node_modules/ here, only when node_modules is missing or older than
# package-lock.json. Exit codes: the test runner's, 77 (ctest's skip code)
# when node or npm is not installed (scripts/install-deps installs them),
# 1 when `npm ci` fails: a registry that cannot be reached is a failure, not
# a skip.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 /path/to/xnai" >&2
  exit 2
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: integration.openai_client needs '$tool', which is not installed" \
         "(scripts/install-deps installs Node.js and npm)"
    exit 77
  fi
done

if [ ! -x "$1" ]; then
  echo "run.sh: $1 is not an executable xnai binary" >&2
  exit 1
fi
xnai_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

cd "$here"

# The stamp is written only after `npm ci` succeeded, so an interrupted
# install (which leaves a fresh but incomplete node_modules) is redone.
stamp=node_modules/.xnai-npm-ci-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "run.sh: npm ci (node $(node --version), npm $(npm --version 2>/dev/null))"
  if ! npm ci --no-audit --no-fund; then
    echo "FAILED: integration.openai_client: 'npm ci' in $here failed (see npm's error above);" \
         "the npm registry must be reachable to install the openai client" >&2
    exit 1
  fi
  touch "$stamp"
fi

# No XNAI_* configuration of the caller reaches the test (it removes them
# for the servers as well); only the binary under test.
while IFS= read -r name; do
  unset "$name"
done < <(env | sed -n 's/^\(XNAI_[A-Za-z0-9_]*\)=.*/\1/p')

export XNAI_BIN="$xnai_bin"
exec node --test --test-reporter=spec openai_client.test.mjs
