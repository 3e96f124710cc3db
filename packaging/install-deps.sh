#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing.
# Runs apt-get update first (a fresh machine has no package lists).
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# orthanc's postinst tries to start a service; policy-rc.d keeps it quiet in
# containers, and the benchmark starts its own instance anyway.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
