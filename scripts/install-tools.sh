#!/usr/bin/env bash
# Installs the tools the end-to-end tests drive, into .tools/ (gitignored), leaving the system
# Node alone: Node 22 (the npm `node` package) and the official MCP Inspector CLI, which needs
# Node 22. Run by `npm test` (scripts/test.sh), which also finds or installs redis-server and
# Chromium from Debian's packages. Idempotent: does nothing when the pinned versions are there.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=22.23.3
INSPECTOR_VERSION=2.12.0
TOOLS=.tools
NODE_BIN="$TOOLS/node_modules/node/bin/node"
INSPECTOR_BIN="$TOOLS/node_modules/.bin/mcp-inspector"
INSPECTOR_PKG="$TOOLS/node_modules/@modelcontextprotocol/inspector/package.json"

installed_inspector() {
  [ -f "$INSPECTOR_PKG" ] && node -p "require('./$INSPECTOR_PKG').version" 2>/dev/null || true
}
installed_node() {
  [ -x "$NODE_BIN" ] && "$NODE_BIN" --version 2>/dev/null || true
}

if [ "$(installed_node)" = "v$NODE_VERSION" ] && [ -x "$INSPECTOR_BIN" ] &&
  [ "$(installed_inspector)" = "$INSPECTOR_VERSION" ]; then
  echo "tools: Node $(installed_node) and MCP Inspector $INSPECTOR_VERSION already in $TOOLS/"
else
  mkdir -p "$TOOLS"
  # A package.json of its own keeps npm from walking up into the project's.
  [ -f "$TOOLS/package.json" ] || echo '{ "name": "payrouter-tools", "private": true }' > "$TOOLS/package.json"
  npm install --prefix "$TOOLS" --no-audit --no-fund \
    "node@$NODE_VERSION" "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"
fi

# Fail loudly here rather than in the tests.
"$NODE_BIN" --version >/dev/null
PATH="$PWD/$TOOLS/node_modules/.bin:$PATH" "$INSPECTOR_BIN" --help >/dev/null 2>&1 ||
  { echo "tools: $INSPECTOR_BIN does not start under $NODE_BIN" >&2; exit 1; }
echo "tools: Node $("$NODE_BIN" --version), MCP Inspector $(installed_inspector)"
