#!/usr/bin/env bash
# Intake benchmark: the same CT series is sent with DCMTK storescu, over one
# association on loopback, to pushgate, to DCMTK storescp and to Orthanc, in
# two rounds:
#   tuned    TCP_NODELAY=1 in the environment of storescu, storescp and
#            Orthanc (DCMTK, and Orthanc through DCMTK, then disable Nagle)
#   default  TCP_NODELAY unset: Nagle stays on in DCMTK/Orthanc; pushgate
#            sets TCP_NODELAY and TCP_QUICKACK on its sockets by itself
# Only the storescu run is timed. Every run gets a fresh, empty storage
# directory and is checked to have received every instance.
#
# Usage: bench/intake.sh [--repeat N] [--count N] [--round tuned|default]
#   --repeat N  run each contender N times per round, report the median (1)
#   --count N   slices in the series (500; smaller for a quick smoke run)
#   --round R   only that round (both by default)
# Needs: cargo build --release --bins, and dcmtk, orthanc, curl installed
# (`make bench` does all of it). Writes everything under bench/out/ and the
# table also to bench/out/intake-latest.txt.
set -euo pipefail

# shellcheck source=bench/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

REPEAT=1
COUNT=500
SIZE=512
CONTENDERS=(pushgate storescp orthanc)
ROUNDS=(tuned default)


while (($#)); do
  case $1 in
    --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --round)
      [[ ${2:-} == tuned || ${2:-} == default ]] || die "--round is tuned or default"
      ROUNDS=("$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer"

for exe in "$PUSHGATE" "$SAMPLES"; do
  [[ -x $exe ]] || die "$exe missing: run 'cargo build --release --bins' (or 'make bench')"
done
for exe in "$STORESCU" "$STORESCP" "$ECHOSCU" "$ORTHANC"; do
  [[ -x $exe ]] || die "$exe missing: run 'make bench-deps' (Debian packages dcmtk, orthanc)"
done
command -v curl >/dev/null || die "curl missing: run 'make bench-deps'"

mkdir -p "$OUT" "$LOGS"

# ---------------------------------------------------------------- processes
# The one server running at a time; the EXIT trap stops it whatever happens.
SERVER_PID=
SERVER_NAME=

stop_server() {
  local pid=$SERVER_PID name=$SERVER_NAME status=0
  [[ -n $pid ]] || return 0
  SERVER_PID=
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "warning: $name (pid $pid) ignored SIGTERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  # storescp exits 1 on SIGTERM by design; pushgate and Orthanc should stop
  # cleanly.
  if ((status != 0)) && [[ $name != storescp ]]; then
    say "warning: $name exited with status $status after SIGTERM (log: $LOGS/)"
  fi
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# Wait until a DICOM SCP answers C-ECHO (storescp and Orthanc print no
# "ready" line).
wait_echo() { # aet port log
  for _ in $(seq 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$3" >&2; die "$SERVER_NAME exited during startup (log: $3)"; }
    "$ECHOSCU" -to 5 -aec "$1" 127.0.0.1 "$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 30 "$3" >&2
  die "$SERVER_NAME did not answer C-ECHO on port $2 within 60 s (log: $3)"
}

# --------------------------------------------------------------------- data
# shellcheck source=bench/study.sh
source "$ROOT/bench/study.sh"

# ---------------------------------------------------------------- contenders
# Each run_<contender> starts its server with a fresh storage directory,
# times storescu, checks the instance count, records peak RSS, stops it.
# Sets RUN_SECS and RUN_RSS_KB.
RUN_SECS=
RUN_RSS_KB=

# send AET PORT LOG: the timed part. One storescu process, one association,
# all files, in the round's environment.
send() {
  local t0 t1 rc=0
  t0=$(date +%s%N)
  "${ROUND_ENV[@]}" "$STORESCU" -aec "$1" 127.0.0.1 "$2" "${FILES[@]}" >"$3" 2>&1 || rc=$?
  t1=$(date +%s%N)
  if ((rc != 0)) || grep -q '^E:' "$3"; then
    tail -n 30 "$3" >&2
    die "storescu to $SERVER_NAME failed (exit $rc, log: $3)"
  fi
  RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

# expect NAME GOT: fail loudly unless every instance arrived.
expect() {
  (($2 == COUNT)) || die "$1 received $2 of $COUNT instances (logs: $LOGS/)"
}

run_pushgate() {
  local tag=$1 dport hport cport cfg=$OUT/pushgate.toml dir=$OUT/pushgate-data
  local log=$LOGS/pushgate-$tag.log out=$LOGS/pushgate-$tag.out got=0 waited=0 json
  free_port dport
  free_port hport
  free_port cport
  rm -rf "$dir"
  cat >"$cfg" <<EOF
# written by bench/intake.sh
data_dir = "$dir"
[dicom]
listen = "127.0.0.1:$dport"
[http]
listen = "127.0.0.1:$hport"
[console]
listen = "127.0.0.1:$cport"
EOF
  "${ROUND_ENV[@]}" "$PUSHGATE" serve --config "$cfg" >"$out" 2>"$log" &
  SERVER_PID=$! SERVER_NAME=pushgate
  for _ in $(seq 600); do
    grep -q '^pushgate listening ' "$out" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$log" >&2; die "pushgate exited during startup (log: $log)"; }
    sleep 0.1
  done
  grep -q '^pushgate listening ' "$out" || die "pushgate printed no 'pushgate listening' line within 60 s (log: $log)"

  send PUSHGATE "$dport" "$LOGS/storescu-pushgate-$tag.log"

  # The C-STORE-RSP comes after fsync and indexing, so the count should be
  # complete at once; allow a little slack but say so if it was needed.
  for _ in $(seq 100); do
    json=$("$PUSHGATE" studies --json --config "$cfg" 2>>"$log") || json=
    got=$(awk '{ while (match($0, /"num_instances": *[0-9]+/)) {
                   s = substr($0, RSTART, RLENGTH); sub(/.*: */, "", s); n += s
                   $0 = substr($0, RSTART + RLENGTH) } }
               END { print n + 0 }' <<<"$json")
    ((got == COUNT)) && break
    waited=$((waited + 1))
    sleep 0.1
  done
  ((waited == 0)) || say "note: pushgate's index showed all instances only $((waited / 10)).$((waited % 10)) s after storescu ended"
  RUN_RSS_KB=$(peak_rss_kb "$SERVER_PID")
  stop_server
  expect pushgate "$got"
  rm -rf "$dir"
}

run_storescp() {
  local tag=$1 port dir=$OUT/storescp-data got
  local log=$LOGS/storescp-$tag.log
  free_port port
  rm -rf "$dir"
  mkdir -p "$dir"
  # +xa: accept every transfer syntax storescp supports; -od: one file per
  # instance in DIR. No fsync, no index.
  "${ROUND_ENV[@]}" "$STORESCP" -aet STORESCP +xa -od "$dir" "$port" >"$log" 2>&1 &
  SERVER_PID=$! SERVER_NAME=storescp
  wait_echo STORESCP "$port" "$log"

  send STORESCP "$port" "$LOGS/storescu-storescp-$tag.log"

  got=$(find "$dir" -type f | wc -l)
  RUN_RSS_KB=$(peak_rss_kb "$SERVER_PID")
  stop_server
  expect storescp "$got"
  rm -rf "$dir"
}

run_orthanc() {
  local tag=$1 dport hport dir=$OUT/orthanc cfg=$OUT/orthanc.json
  local log=$LOGS/orthanc-$tag.log got stats
  free_port dport
  free_port hport
  rm -rf "$dir"
  mkdir -p "$dir"
  # Everything not set here stays at Orthanc's built-in default (durability
  # included: see ORTHANC_DURABILITY). Orthanc 1.10 has no bind-address
  # option: its ports listen on all interfaces, but only loopback is used and
  # RemoteAccessAllowed=false refuses HTTP from elsewhere.
  cat >"$cfg" <<EOF
{
  "Name" : "pushgate-bench",
  "StorageDirectory" : "$dir/storage",
  "IndexDirectory" : "$dir/index",
  "Plugins" : [ ],
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $dport,
  "HttpServerEnabled" : true,
  "HttpPort" : $hport,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false
}
EOF
  # The config path is given explicitly so /etc/orthanc/*.json is not read.
  "${ROUND_ENV[@]}" "$ORTHANC" "$cfg" >"$log" 2>&1 &
  SERVER_PID=$! SERVER_NAME=orthanc
  wait_echo ORTHANC "$dport" "$log"

  send ORTHANC "$dport" "$LOGS/storescu-orthanc-$tag.log"

  stats=$(curl -fsS --max-time 10 "http://127.0.0.1:$hport/statistics") ||
    die "could not read Orthanc's /statistics (log: $log)"
  got=$(sed -n 's/.*"CountInstances" *: *\([0-9]*\).*/\1/p' <<<"$stats" | head -n 1)
  RUN_RSS_KB=$(peak_rss_kb "$SERVER_PID")
  stop_server
  expect orthanc "${got:-0}"
  rm -rf "$dir"
}

# Orthanc's durability defaults as shipped, read from the binary itself.
orthanc_durability() {
  local sync sqlite
  sync=$("$ORTHANC" --config=- 2>/dev/null |
    sed -n 's/^ *"SyncStorageArea" *: *\([a-z]*\).*/\1/p' | head -n 1) || true
  # Orthanc sets its SQLite pragmas in code; grep the binary for them.
  sqlite=$(grep -a -o -E 'PRAGMA (JOURNAL_MODE|SYNCHRONOUS)=[A-Z]+' "$ORTHANC" |
    sed 's/PRAGMA //' | sort -u | paste -sd ' ' -) || true
  echo "SyncStorageArea=${sync:-?} (fsync per stored file), SQLite index ${sqlite:-?}"
}
ORTHANC_DURABILITY=$(orthanc_durability)

# ------------------------------------------------------------------- rounds
declare -A TIMES=() PEAK=()
for round in "${ROUNDS[@]}"; do
  if [[ $round == tuned ]]; then
    ROUND_ENV=(env TCP_NODELAY=1)
  else
    ROUND_ENV=(env -u TCP_NODELAY) # also if the caller has it set
  fi
  for ((rep = 1; rep <= REPEAT; rep++)); do
    for c in "${CONTENDERS[@]}"; do
      sync # flush the previous run's dirty pages outside the timed part
      "run_$c" "$round-$rep"
      TIMES[$round/$c]+="$RUN_SECS "
      ((RUN_RSS_KB > ${PEAK[$round/$c]:-0})) && PEAK[$round/$c]=$RUN_RSS_KB
      say "$(printf '%-8s %-9s run %d/%d: %7.3f s  %d/%d instances  peak RSS %d MB' \
        "$round" "$c" "$rep" "$REPEAT" "$RUN_SECS" "$COUNT" "$COUNT" $(((RUN_RSS_KB + 512) / 1024)))"
    done
  done
done

# ------------------------------------------------------------------- report

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
report=$OUT/intake-latest.txt
{
  echo "intake benchmark: $COUNT CT ${SIZE}x${SIZE}x16 ($DATA_MB MB of files), one association, DCMTK storescu $("$STORESCU" --version | sed -n 's/.*storescu v\([^ ]*\).*/\1/p' | head -n 1), ${cpu:-unknown CPU} ($(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "pushgate $("$PUSHGATE" --version | awk '{ print $2 }'), $("$ORTHANC" --version | head -n 1 | sed 's:.*/::'), seconds = median of $REPEAT run(s) of storescu, MB = 10^6 bytes"
  printf '%-9s %-10s %8s %7s %12s %10s\n' round contender seconds MB/s "vs pushgate" "peak RSS"
  for round in "${ROUNDS[@]}"; do
    base=$(median "${TIMES[$round/pushgate]}")
    for c in "${CONTENDERS[@]}"; do
      s=$(median "${TIMES[$round/$c]}")
      awk -v r="$round" -v c="$c" -v s="$s" -v b="$base" -v mb="$DATA_BYTES" -v kb="${PEAK[$round/$c]}" \
        'BEGIN { printf "%-9s %-10s %8.2f %7.0f %12.2f %7.0f MB\n", r, c, s, mb / 1e6 / s, s / b, kb / 1024 }'
    done
  done
  if ((${#ROUNDS[@]} == 2)); then
    awk -v d="$(median "${TIMES[default/pushgate]}")" -v t="$(median "${TIMES[tuned/pushgate]}")" \
      -v kb="$(printf '%s\n' "${PEAK[tuned/pushgate]}" "${PEAK[default/pushgate]}" | sort -n | tail -n 1)" \
      'BEGIN { printf "pushgate default/tuned: %.2fx   pushgate peak RSS: %.0f MB\n", d / t, kb / 1024 }'
  fi
  echo "vs pushgate = contender seconds / pushgate seconds in the same round (>1: pushgate faster)"
  echo "tuned: TCP_NODELAY=1 for storescu, storescp, Orthanc; default: TCP_NODELAY unset (Nagle on); pushgate sets TCP_NODELAY+TCP_QUICKACK itself"
  echo "durability: pushgate fsync before each C-STORE-RSP + index; storescp plain files, no fsync, no index;"
  echo "            orthanc defaults: $ORTHANC_DURABILITY"
} | tee "$report"
say "(table written to ${report#"$ROOT"/}; logs in ${LOGS#"$ROOT"/}/)"
