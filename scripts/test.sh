#!/usr/bin/env bash
# `npm test`: find or install what the suite needs, then lint, build, type-check and run every test.
#
#   npm test                          # everything
#   npm test -- test/money.test.ts    # the same preparation, then only these vitest files
#
# Needs: Node 22 and the MCP Inspector CLI (installed from npm into .tools/ by
# scripts/install-tools.sh, beside the system Node), redis-server and Chromium (Debian packages,
# installed with apt-get when missing and running as root; otherwise this stops with the command).
# The build runs before the type check: examples/ and the README import 'payrouter' itself, whose
# types are the built dist/*.d.ts, as in a project that depends on the package.
set -euo pipefail
cd "$(dirname "$0")/.."

current=""
step() {
  current="$*"
  printf '\n== %s\n' "$*"
}
# A step that fails before the tests run still ends the output with the summary line, counted
# as one failure, so the last line never reads as a green run.
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$current" != "tests (vitest)" ]; then
    echo "npm test: stopped at \"${current:-start}\" (exit $rc)" >&2
    printf '\n0 passed, 1 failed, 0 skipped\n'
  fi
}
trap on_exit EXIT

step "system packages: redis-server, chromium"
if [ -n "${CHROMIUM_PATH:-}" ] && [ ! -x "$CHROMIUM_PATH" ]; then
  echo "npm test: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable; unset it to use /usr/bin/chromium" >&2
  exit 1
fi
chromium_bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x "$chromium_bin" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "npm test: ${missing[*]} missing; install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "$(redis-server --version | cut -d' ' -f1-3), $("$chromium_bin" --version 2>/dev/null || echo chromium)"

step "tools: Node 22 + MCP Inspector in .tools/"
bash scripts/install-tools.sh

step "lint (biome)"
npx biome check .

step "build (tsup)"
npm run --silent build

step "type check (tsc)"
npx tsc --noEmit

step "tests (vitest)"
npx vitest run "$@"
