#!/usr/bin/env bash
# Retention benchmark: how long deleting a whole study takes, side by side.
# The same CT series is stored, then deleted:
#   pushgate  by its retention sweep (retention.max_age passed): journaled
#             (fsync), a crash marker, files, index entries; the time is the
#             `study deleted … micros=` the daemon logs for that deletion
#   orthanc   DELETE /studies/{id} over its REST API (Debian's package,
#             default settings), timed around curl
#   rm        `rm -r` of a plain copy of the files (no index, no journal):
#             the floor
# Usage: bench/retention.sh [--repeat N] [--count N]
# Needs: cargo build --release --bins, dcmtk, orthanc, curl (make bench).
# Writes bench/out/retention-latest.txt.
set -euo pipefail

# shellcheck source=bench/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
REPEAT=1
COUNT=500
SIZE=512


while (($#)); do
  case $1 in
    --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
for exe in "$PUSHGATE" "$SAMPLES" "$STORESCU" "$ORTHANC"; do
  [[ -x $exe ]] || die "$exe missing: run 'make bench' (builds and installs what it needs)"
done
mkdir -p "$OUT" "$LOGS"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=bench/study.sh
source "$ROOT/bench/study.sh"

SERVER_PID=
trap 'stop_pid "$SERVER_PID" server' EXIT
trap 'exit 130' INT

send() { # aet port log
  env TCP_NODELAY=1 "$STORESCU" -aec "$1" 127.0.0.1 "$2" "${FILES[@]}" >"$3" 2>&1 ||
    { tail -n 20 "$3" >&2; die "storescu failed (log: $3)"; }
}

RUN_SECS=
run_pushgate() {
  local tag=$1 dport hport cport dir=$OUT/retention-pg cfg=$OUT/retention-pg.toml
  local log=$LOGS/retention-pushgate-$tag.log out=$LOGS/retention-pushgate-$tag.out line micros left
  free_port dport
  free_port hport
  free_port cport
  rm -rf "$dir"
  cat >"$cfg" <<CFG
# written by bench/retention.sh
data_dir = "$dir"
[dicom]
listen = "127.0.0.1:$dport"
stable_after = "1s"
[http]
listen = "127.0.0.1:$hport"
[console]
listen = "127.0.0.1:$cport"
[retention]
max_age = "3s"
sweep_every = "1s"
CFG
  "$PUSHGATE" serve --config "$cfg" >"$out" 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 600); do
    grep -q '^pushgate listening ' "$out" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$log" >&2; die "pushgate exited (log: $log)"; }
    sleep 0.1
  done
  send PUSHGATE "$dport" "$LOGS/retention-storescu-pg-$tag.log"
  for _ in $(seq 300); do
    grep -q 'study deleted' "$log" && break
    sleep 0.1
  done
  line=$(grep 'study deleted' "$log" | head -n 1) || die "pushgate deleted nothing within 30 s (log: $log)"
  micros=$(sed -n 's/.*micros=\([0-9]*\).*/\1/p' <<<"$line")
  [[ -n $micros ]] || die "no micros= in: $line"
  grep -q "instances=$COUNT" <<<"$line" || die "deleted a different count: $line"
  left=$(find "$dir/instances" -type f -name '*.dcm' | wc -l)
  ((left == 0)) || die "$left instance files left after the deletion"
  grep -qh '"study_deleted"' "$dir"/journal/*.jsonl || die "no study_deleted record in the journal"
  RUN_SECS=$(awk -v m="$micros" 'BEGIN { printf "%.3f", m / 1e6 }')
  stop_pid "$SERVER_PID" pushgate
  SERVER_PID=
  rm -rf "$dir"
}

run_orthanc() {
  local tag=$1 dport hport dir=$OUT/retention-orthanc cfg=$OUT/retention-orthanc.json
  local log=$LOGS/retention-orthanc-$tag.log id t0 t1 count
  free_port dport
  free_port hport
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$cfg" <<CFG
{
  "Name" : "pushgate-bench",
  "StorageDirectory" : "$dir/storage",
  "IndexDirectory" : "$dir/index",
  "Plugins" : [ ],
  "DicomAet" : "ORTHANC",
  "DicomPort" : $dport,
  "HttpPort" : $hport,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false
}
CFG
  "$ORTHANC" "$cfg" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_echo "$SERVER_PID" ORTHANC "$dport" "$log"
  send ORTHANC "$dport" "$LOGS/retention-storescu-orthanc-$tag.log"
  id=$(curl -fsS "http://127.0.0.1:$hport/studies" | tr -d '[]" \n' | cut -d, -f1)
  [[ -n $id ]] || die "Orthanc lists no study (log: $log)"
  sync
  t0=$(date +%s%N)
  curl -fsS -X DELETE "http://127.0.0.1:$hport/studies/$id" >/dev/null || die "DELETE failed (log: $log)"
  t1=$(date +%s%N)
  count=$(curl -fsS "http://127.0.0.1:$hport/statistics" | sed -n 's/.*"CountInstances" *: *\([0-9]*\).*/\1/p' | head -n 1)
  ((count == 0)) || die "Orthanc still has $count instances"
  RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  stop_pid "$SERVER_PID" orthanc
  SERVER_PID=
  rm -rf "$dir"
}

run_rm() {
  local dir=$OUT/retention-rm t0 t1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "${FILES[@]}" "$dir/"
  sync
  t0=$(date +%s%N)
  rm -r "$dir"
  t1=$(date +%s%N)
  RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

declare -A TIMES=()
CONTENDERS=(pushgate orthanc rm)
for ((rep = 1; rep <= REPEAT; rep++)); do
  for c in "${CONTENDERS[@]}"; do
    sync
    "run_$c" "$rep"
    TIMES[$c]+="$RUN_SECS "
    say "$(printf '%-9s run %d/%d: %7.3f s' "$c" "$rep" "$REPEAT" "$RUN_SECS")"
  done
done

report=$OUT/retention-latest.txt
{
  echo "retention benchmark: delete one study of $COUNT CT ${SIZE}x${SIZE}x16 ($DATA_MB MB), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'); median of $REPEAT"
  printf '%-10s %9s %14s\n' contender seconds "vs pushgate"
  base=$(median "${TIMES[pushgate]}")
  for c in "${CONTENDERS[@]}"; do
    s=$(median "${TIMES[$c]}")
    awk -v c="$c" -v s="$s" -v b="$base" 'BEGIN { printf "%-10s %9.3f %14.2f\n", c, s, s / b }'
  done
  echo "vs pushgate = contender seconds / pushgate seconds (>1: pushgate faster)"
  echo "pushgate: journal record (fsync) + crash marker + files + index; orthanc: REST DELETE (files + SQLite); rm: rm -r of plain files"
} | tee "$report"
