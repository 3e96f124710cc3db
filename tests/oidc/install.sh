#!/usr/bin/env bash
# Installs what tests/console_oidc.rs runs from npm, once: the certified
# OpenID provider `oidc-provider` and `jose` (the fake provider's JWTs),
# pinned, under ~/.cache/pushgate/npm/oidc-provider-<version>. Prints that
# directory. Needs node and npm (Debian's nodejs and npm packages).
set -euo pipefail
OIDC_PROVIDER=9.13.3
JOSE=6.2.19
dir="${XDG_CACHE_HOME:-$HOME/.cache}/pushgate/npm/oidc-provider-$OIDC_PROVIDER"
if [[ -f $dir/.installed-jose-$JOSE ]]; then
  echo "$dir"
  exit 0
fi
command -v node >/dev/null || { echo "node is missing: install Debian's nodejs (make deps)" >&2; exit 1; }
if ! command -v npm >/dev/null; then
  "$(dirname "$0")/../../packaging/install-deps.sh" npm >&2
fi
mkdir -p "$dir"
echo "installing oidc-provider@$OIDC_PROVIDER jose@$JOSE into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
  "oidc-provider@$OIDC_PROVIDER" "jose@$JOSE" >&2
touch "$dir/.installed-jose-$JOSE"
echo "$dir"
