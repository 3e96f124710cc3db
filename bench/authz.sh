#!/usr/bin/env bash
# Access decisions and journal throughput, each beside its reference (a
# SHA-256 of the token; one fdatasync per event on the same disk). The
# journal is written under bench/out, on the disk the daemon would use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bench/out
BENCH_DIR=bench/out cargo bench --bench authz 2>/dev/null | tee bench/out/authz-latest.txt
