# Sourced first by every bench script: where things are, and how a script
# says things and gives up. Sets ROOT (and cd's there), OUT, LOGS, DATA, the
# binaries measured and the reference tools, die and say.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/bench/out
LOGS=$OUT/logs
DATA=$OUT/data
# PUSHGATE_BIN: another build to measure (e.g. the one before a change), same run.
PUSHGATE=${PUSHGATE_BIN:-$ROOT/target/release/pushgate}
SAMPLES=$ROOT/target/release/pushgate-samples
# Full paths: pip's pynetdicom installs its own `storescu` that may come
# first on PATH.
STORESCU=/usr/bin/storescu
STORESCP=/usr/bin/storescp
ECHOSCU=/usr/bin/echoscu
DCMDUMP=/usr/bin/dcmdump
ORTHANC=/usr/sbin/Orthanc
NGINX=/usr/sbin/nginx
TIME=/usr/bin/time

BENCH_NAME=$(basename "$0")
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
say() { echo "$*" >&2; }
