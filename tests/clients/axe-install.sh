#!/usr/bin/env bash
# Installs axe-core (the accessibility checker tests/console_browser.rs
# runs in the console's pages), pinned, once, under
# ~/.cache/pushgate/npm/axe-core-<version>. Prints the path of axe.min.js.
set -euo pipefail
AXE=4.11.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/pushgate/npm/axe-core-$AXE"
if [[ ! -f $dir/node_modules/axe-core/axe.min.js ]]; then
  if ! command -v npm >/dev/null; then
    "$(dirname "$0")/../../packaging/install-deps.sh" npm >&2
  fi
  mkdir -p "$dir"
  echo "installing axe-core@$AXE into $dir" >&2
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "axe-core@$AXE" >&2
fi
echo "$dir/node_modules/axe-core/axe.min.js"
