#!/usr/bin/env bash
# Console benchmark: the study list over many studies (10,000 by default,
# one small instance each, of many patients, dates and modalities, made by
# `pushgate-samples studies` and sent with DCMTK storescu to pushgate and to
# Orthanc, so both hold the same studies in their own store). Then, over
# kept-alive HTTPS connections (Orthanc behind nginx, as in
# bench/retrieve.sh: TLS against TLS), interleaved, REPEAT times each:
#   console   /console/studies: page 1, a later page, a name search
#             (jansen*), a date range (2023-01-01..2023-03-31), as a
#             logged-in person (50 rows a page)
#   admin API /admin/v1/studies: every study as JSON (the API has no pages
#             or search; what `pushgate studies` reads)
#   Orthanc   POST /tools/find, Level Study, Expand, Limit 50: the same four
#             (Since for the later page, PatientName, StudyDate range)
# and prints p50/p95 per request and the ratios console/Orthanc. Target:
# console p95 < 100 ms per page.
#
# Usage: bench/console.sh [--count N] [--repeat N]
#   --count N    studies (10000)
#   --repeat N   timed requests of each kind (50)
# Needs: cargo build --release --bins; dcmtk, orthanc, nginx, openssl,
# python3, curl. Writes under bench/out/ and the table to
# bench/out/console-latest.txt.
set -euo pipefail

# shellcheck source=bench/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
WORK=$OUT/console
HELPER=$ROOT/bench/console.py
COUNT=10000
REPEAT=50

while (($#)); do
  case $1 in
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ ]] && ((COUNT >= 200)) || die "--count must be a number of at least 200"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
for exe in "$PUSHGATE" "$SAMPLES"; do
  [[ -x $exe ]] || die "$exe missing: run 'cargo build --release --bins'"
done
for exe in "$STORESCU" "$ECHOSCU" "$ORTHANC" "$NGINX"; do
  [[ -x $exe ]] || die "$exe missing: apt-get install dcmtk orthanc nginx"
done
command -v curl >/dev/null || die "curl missing"
command -v python3 >/dev/null || die "python3 missing"

mkdir -p "$OUT" "$LOGS" "$DATA"
rm -rf "$WORK"
mkdir -p "$WORK"

PG_PID=
OR_PID=
NG_PID=
stop_all() {
  local p
  p=$PG_PID; PG_PID=; stop_pid "$p" pushgate
  p=$OR_PID; OR_PID=; stop_pid "$p" orthanc
  p=$NG_PID; NG_PID=; stop_pid "$p" nginx
}
trap stop_all EXIT
trap 'echo "console.sh: unexpected failure (status $?) at line $LINENO" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# --------------------------------------------------------------------- data
STUDIES=$DATA/console-studies-$COUNT
if [[ ! -f $STUDIES.done ]] || (($(find "$STUDIES" -name '*.dcm' | wc -l) != COUNT)); then
  rm -rf "$STUDIES"
  say "writing $COUNT studies to $STUDIES"
  "$SAMPLES" studies "$STUDIES" --count "$COUNT" 2>>"$LOGS/console-samples.log" ||
    die "pushgate-samples studies failed (log: $LOGS/console-samples.log)"
  touch "$STUDIES.done"
fi

# ------------------------------------------------------------------ servers
PG_DIR=$WORK/pushgate-data
PG_CFG=$WORK/pushgate.toml
OR_DIR=$WORK/orthanc
OR_CFG=$WORK/orthanc.json
NG_DIR=$WORK/nginx
free_port PG_DPORT
free_port PG_HPORT
free_port PG_CPORT
free_port OR_DPORT
free_port OR_HPORT
free_port OR_TPORT
cat >"$PG_CFG" <<CFG
# written by bench/console.sh
data_dir = "$PG_DIR"
public_url = "https://127.0.0.1:$PG_HPORT"
[dicom]
listen = "127.0.0.1:$PG_DPORT"
stable_after = "1s"
[http]
listen = "127.0.0.1:$PG_HPORT"
[console]
listen = "127.0.0.1:$PG_CPORT"
CFG
# Orthanc as in bench/retrieve.sh: its built-in defaults (SQLite index),
# HTTP on loopback behind nginx for TLS.
cat >"$OR_CFG" <<CFG
{
  "Name" : "pushgate-bench-console",
  "StorageDirectory" : "$OR_DIR/storage",
  "IndexDirectory" : "$OR_DIR/index",
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $OR_DPORT,
  "HttpServerEnabled" : true,
  "HttpPort" : $OR_HPORT,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false
}
CFG
mkdir -p "$OR_DIR"
nginx_tls_front "$NG_DIR" "$OR_TPORT" "$OR_HPORT" 1 "$LOGS/console-nginx.log"

say "starting pushgate (dicom $PG_DPORT, console $PG_CPORT), Orthanc (dicom $OR_DPORT) and nginx ($OR_TPORT)"
"$PUSHGATE" serve --config "$PG_CFG" >"$LOGS/console-pushgate.out" 2>"$LOGS/console-pushgate.log" &
PG_PID=$!
TCP_NODELAY=1 "$ORTHANC" "$OR_CFG" >"$LOGS/console-orthanc.log" 2>&1 &
OR_PID=$!
"$NGINX" -c "$NG_DIR/nginx.conf" -g 'daemon off;' >>"$LOGS/console-nginx.log" 2>&1 &
NG_PID=$!
wait_echo "$PG_PID" PUSHGATE "$PG_DPORT" "$LOGS/console-pushgate.log"
wait_echo "$OR_PID" ORTHANC "$OR_DPORT" "$LOGS/console-orthanc.log"

send() { # name aet port
  local log=$LOGS/console-storescu-$1.log started
  started=$(date +%s.%N)
  TCP_NODELAY=1 "$STORESCU" -aec "$2" +sd 127.0.0.1 "$3" "$STUDIES" >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; die "storescu to $1 failed (log: $log)"; }
  ! grep -q '^E:' "$log" || { tail -n 20 "$log" >&2; die "storescu to $1 reported errors (log: $log)"; }
  say "  $1: $COUNT studies stored in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }') s"
}
say "storing $COUNT studies in both"
send pushgate PUSHGATE "$PG_DPORT"
send orthanc ORTHANC "$OR_DPORT"

TOKEN=$(tr -d '[:space:]' <"$PG_DIR/admin.token")
admin() { curl -fsSk --max-time 60 -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PG_CPORT$1"; }
for i in $(seq 600); do
  complete=$(admin /admin/v1/studies | grep -o '"state":"complete"' | wc -l) || complete=0
  ((complete == COUNT)) && break
  ((i < 600)) || die "pushgate shows $complete of $COUNT studies complete"
  sleep 0.5
done
for i in $(seq 600); do
  got=$(curl -fsS --max-time 10 "http://127.0.0.1:$OR_HPORT/statistics" |
    sed -n 's/.*"CountStudies" *: *\([0-9]*\).*/\1/p' | awk 'NR == 1')
  ((${got:-0} == COUNT)) && break
  ((i < 600)) || die "orthanc holds ${got:-0} of $COUNT studies"
  sleep 0.5
done

# a person in the console: a local account, enrolled, logged in
enrol=$("$PUSHGATE" users add bench --role user --json --config "$PG_CFG" 2>>"$LOGS/console-cli.log" |
  sed -n 's/.*"enrol_url" *: *"\([^"]*\)".*/\1/p')
[[ -n $enrol ]] || die "pushgate users add printed no enrolment link (log: $LOGS/console-cli.log)"
COOKIE=$(python3 "$HELPER" login "127.0.0.1:$PG_CPORT" "$enrol")

LAST_PAGE=$(((COUNT + 49) / 50))
LATER=$((LAST_PAGE * 3 / 4))
SINCE=$(((LATER - 1) * 50))
# (regular expressions inside JSON strings: . for the quotes)
ROW='class=.button. href=./console/share/'
TOTAL='<p id=.found.[^>]*>([0-9]+) onderzoek'
cat >"$WORK/spec.json" <<JSON
[
 {"name": "console-page1", "host": "127.0.0.1", "port": $PG_CPORT, "path": "/console/studies",
  "headers": {"Cookie": "$COOKIE", "Accept-Language": "nl"}, "rows": 50, "rows_re": "$ROW", "total_re": "$TOTAL"},
 {"name": "console-later", "host": "127.0.0.1", "port": $PG_CPORT, "path": "/console/studies?page=$LATER",
  "headers": {"Cookie": "$COOKIE", "Accept-Language": "nl"}, "rows": 50, "rows_re": "$ROW"},
 {"name": "console-name", "host": "127.0.0.1", "port": $PG_CPORT, "path": "/console/studies?name=jansen*",
  "headers": {"Cookie": "$COOKIE", "Accept-Language": "nl"}, "rows": "console-name", "rows_re": "$ROW", "total_re": "$TOTAL"},
 {"name": "console-dates", "host": "127.0.0.1", "port": $PG_CPORT, "path": "/console/studies?from=2023-01-01&to=2023-03-31",
  "headers": {"Cookie": "$COOKIE", "Accept-Language": "nl"}, "rows": "console-dates", "rows_re": "$ROW", "total_re": "$TOTAL"},
 {"name": "admin-all", "host": "127.0.0.1", "port": $PG_CPORT, "path": "/admin/v1/studies",
  "headers": {"Authorization": "Bearer $TOKEN"}, "rows": $COUNT},
 {"name": "orthanc-page1", "host": "127.0.0.1", "port": $OR_TPORT, "method": "POST", "path": "/tools/find",
  "body": {"Level": "Study", "Expand": true, "Query": {}, "Limit": 50}, "rows": 50},
 {"name": "orthanc-later", "host": "127.0.0.1", "port": $OR_TPORT, "method": "POST", "path": "/tools/find",
  "body": {"Level": "Study", "Expand": true, "Query": {}, "Limit": 50, "Since": $SINCE}, "rows": 50},
 {"name": "orthanc-name", "host": "127.0.0.1", "port": $OR_TPORT, "method": "POST", "path": "/tools/find",
  "body": {"Level": "Study", "Expand": true, "Query": {"PatientName": "Jansen*"}, "Limit": 50}, "rows": "console-name"},
 {"name": "orthanc-dates", "host": "127.0.0.1", "port": $OR_TPORT, "method": "POST", "path": "/tools/find",
  "body": {"Level": "Study", "Expand": true, "Query": {"StudyDate": "20230101-20230331"}, "Limit": 50}, "rows": "console-dates"}
]
JSON
say "timing $REPEAT requests of each kind"
python3 "$HELPER" measure "$WORK/spec.json" "$REPEAT" >"$WORK/times.txt"

p() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$WORK/times.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
{
  echo "console study list, $COUNT studies ($(date -u +%Y-%m-%d), $(nproc) cores, $REPEAT requests each; ms)"
  printf '%-22s %8s %8s   %-22s %8s %8s   %s\n' "pushgate console" p50 p95 "Orthanc /tools/find" p50 p95 "p95 ratio"
  for kind in page1 later name dates; do
    printf '%-22s %8s %8s   %-22s %8s %8s   %s\n' \
      "$kind" "$(p "console-$kind" 2)" "$(p "console-$kind" 3)" \
      "$kind" "$(p "orthanc-$kind" 2)" "$(p "orthanc-$kind" 3)" \
      "$(ratio "$(p "console-$kind" 3)" "$(p "orthanc-$kind" 3)")"
  done
  printf '%-22s %8s %8s   (every study as JSON, no pages)\n' "admin API list" "$(p admin-all 2)" "$(p admin-all 3)"
  echo "found: name jansen* $(p console-name 5) studies, dates 2023-01..03 $(p console-dates 5), all $(p console-page1 5)"
  echo "the console's first list after start (reads every study once): $(p console-page1 6) ms; Orthanc's first: $(p orthanc-page1 6) ms"
  worst=$(awk '$1 ~ /^console-/ && $3 > m { m = $3 } END { print m + 0 }' "$WORK/times.txt")
  if awk -v w="$worst" 'BEGIN { exit !(w < 100) }'; then
    echo "target console p95 < 100 ms: met (worst $worst ms)"
  else
    echo "target console p95 < 100 ms: MISSED (worst $worst ms)"
  fi
} | tee "$OUT/console-latest.txt"
