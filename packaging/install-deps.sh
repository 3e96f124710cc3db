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
# The postinst scripts of orthanc and nginx start their services (Orthanc on
# 4242/8042, nginx on 0.0.0.0:80); the tests and benchmarks start their own
# instances on loopback, so a policy-rc.d that refuses (exit 101) keeps them
# from starting while we install. One already there is left alone.
POLICY=/usr/sbin/policy-rc.d
ours=""
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\n# written by pushgate packaging/install-deps.sh during apt-get install\nexit 101\n' |
    $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ours=1
fi
status=0
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
[[ -z $ours ]] || $SUDO rm -f "$POLICY"
exit "$status"
