#!/usr/bin/env bash
# Relay benchmark: gateway A pushes the benchmark study (500 CT slices) to
# gateway B over HTTPS as one signed and encrypted OpenPGP package; B
# verifies, decrypts, ingests and forwards it by C-STORE to a DCMTK storescp
# playing its PACS. Everything on loopback, in one run:
#
#   end to end   `pushgate send` on A until storescp holds every instance
#                (A seals, uploads; B checks, stores, fsyncs, answers with
#                a signed receipt; B's forwarder sends each instance)
#   seal         A's package-and-encrypt: reading the stored files, the
#                DICOMDIR, the manifest with SHA-256 of every file, the ZIP,
#                signing and encrypting to B, written and fsynced
#   reference    GnuPG on the same ZIP (taken from one of A's packages):
#                `gpg --sign --encrypt` with its default compression and
#                with -z 0, and `gpg --decrypt`; and, as a hand-made
#                end-to-end pipeline, gpg -z 0 seal + gpg decrypt + storescu
#                of the files to a fresh storescp (no ZIP building, no
#                upload, no hashing: it favours the reference)
#
# Usage: bench/relay.sh [--count N] [--repeat N]
#   --count N   slices in the study (500; smaller for a quick smoke run)
#   --repeat N  repeat the timed parts N times, report the median (1)
# Needs: cargo build --release --bins, and dcmtk, gnupg, python3 installed
# (`make bench` does all of it). Writes under bench/out/relay/ and the table
# also to bench/out/relay-latest.txt.
set -euo pipefail

# shellcheck source=bench/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
RUN=$OUT/relay

COUNT=500
SIZE=512
REPEAT=1
URA_A=11111111
URA_B=22222222
URA_C=33333333 # B's OpenPGP key at a closed port: a package that stays in A's outbox

while (($#)); do
  case $1 in
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
for exe in "$PUSHGATE" "$SAMPLES"; do
  [[ -x $exe ]] || die "$exe missing: run 'cargo build --release --bins' (or 'make bench')"
done
for exe in "$STORESCU" "$STORESCP" "$ECHOSCU"; do
  [[ -x $exe ]] || die "$exe missing: run 'make bench-deps' (Debian package dcmtk)"
done
for exe in gpg python3; do
  command -v "$exe" >/dev/null || die "$exe missing: run 'make bench-deps'"
done

rm -rf "$RUN"
mkdir -p "$OUT" "$LOGS" "$RUN"

# ---------------------------------------------------------------- processes
declare -A PID=()
stop_all() {
  local name
  for name in "${!PID[@]}"; do
    kill -TERM "${PID[$name]}" 2>/dev/null || true
  done
  for name in "${!PID[@]}"; do
    wait "${PID[$name]}" 2>/dev/null || true
  done
  PID=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# json EXPR < json: evaluates a Python expression on the parsed input `j`
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }
# iso_secs A B: seconds between two of pushgate's timestamps
iso_secs() {
  python3 - "$1" "$2" <<'EOF'
import sys
from datetime import datetime
t = [datetime.strptime(s.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f") for s in sys.argv[1:]]
print("%.3f" % (t[1] - t[0]).total_seconds())
EOF
}

start_storescp() { # name port dir
  mkdir -p "$3"
  # TCP_NODELAY=1: DCMTK otherwise leaves Nagle on, and its small
  # responses wait for delayed ACKs (see bench/intake.sh, round "default")
  TCP_NODELAY=1 "$STORESCP" -aet STORESCP +xa -od "$3" "$2" >"$LOGS/relay-$1.log" 2>&1 &
  PID[$1]=$!
  for _ in $(seq 300); do
    "$ECHOSCU" -to 5 -aec STORESCP 127.0.0.1 "$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$1 did not answer C-ECHO (log: $LOGS/relay-$1.log)"
}

# start_gateway NAME ORG URA EXTRA: its config, data and book under $RUN
declare -A CFG=() HTTP=() DICOM=()
start_gateway() {
  local name=$1 dport hport cport cfg=$RUN/$1.toml out=$RUN/$1.out
  free_port dport
  free_port hport
  free_port cport
  echo "# filled in below" >"$RUN/$name-peers.toml"
  cat >"$cfg" <<EOF
# written by bench/relay.sh
data_dir = "$RUN/$name-data"
org_name = "$2"
org_ura = "$3"
[dicom]
listen = "127.0.0.1:$dport"
stable_after = "1s"
[http]
listen = "127.0.0.1:$hport"
[console]
listen = "127.0.0.1:$cport"
[relay]
address_book = "$RUN/$name-peers.toml"
$4
EOF
  "$PUSHGATE" serve --config "$cfg" >"$out" 2>"$LOGS/relay-$name.log" &
  PID[$name]=$!
  for _ in $(seq 600); do
    grep -q '^pushgate listening ' "$out" && break
    kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited during startup (log: $LOGS/relay-$name.log)"
    sleep 0.1
  done
  grep -q '^pushgate listening ' "$out" || die "$name did not start (log: $LOGS/relay-$name.log)"
  CFG[$name]=$cfg HTTP[$name]=127.0.0.1:$hport DICOM[$name]=$dport
}
pg() { local name=$1; shift; "$PUSHGATE" "$@" --config "${CFG[$name]}"; }

# entry NAME ORG URA URL [TLS_OF]: the address-book entry for gateway NAME
# (its TLS pin taken from gateway TLS_OF, NAME by default)
entry() {
  local pin
  pin=$(pg "${5:-$1}" keys show | sed -n 's/^tls_spki_sha256 = //p')
  [[ -n $pin ]] || die "no TLS pin from '${5:-$1} keys show'"
  printf '[[gateway]]\nname = "%s"\nura = "%s"\nurl = "%s"\nopenpgp = """\n%s\n"""\ntls_spki_sha256 = %s\n\n' \
    "$2" "$3" "$4" "$(pg "$1" keys show --armor)" "$pin"
}
write_book() { printf '%s' "$2" >"$RUN/$1-peers.tmp" && mv "$RUN/$1-peers.tmp" "$RUN/$1-peers.toml"; }

outbox_item() { # NAME ID: the outbox record of ID as JSON
  pg "$1" outbox --json | python3 -c "
import json, sys
print(json.dumps([i for i in json.load(sys.stdin) if i['id'] == sys.argv[1]][0]))" "$2"
}

# --------------------------------------------------------------------- data
# shellcheck source=bench/study.sh
source "$ROOT/bench/study.sh"

# -------------------------------------------------------------------- setup
free_port PACS_PORT
free_port CLOSED_PORT
start_storescp pacs "$PACS_PORT" "$RUN/pacs"
start_gateway a "Ziekenhuis A" "$URA_A" ""
start_gateway b "Ziekenhuis B" "$URA_B" "[forward]
pacs = \"STORESCP@127.0.0.1:$PACS_PORT\""
write_book a "$(entry b "Ziekenhuis B" "$URA_B" "https://${HTTP[b]}")
$(entry b "Ziekenhuis B (closed)" "$URA_C" "https://127.0.0.1:$CLOSED_PORT" a)"
write_book b "$(entry a "Ziekenhuis A" "$URA_A" "https://${HTTP[a]}")"

say "sending $COUNT instances to A"
TCP_NODELAY=1 "$STORESCU" -aec PUSHGATE 127.0.0.1 "${DICOM[a]}" "${FILES[@]}" >"$LOGS/relay-storescu-a.log" 2>&1 ||
  die "storescu to A failed (log: $LOGS/relay-storescu-a.log)"
STUDY=
for _ in $(seq 600); do
  state=$(pg a studies --json | json 'j[0]["state"] + " " + j[0]["study_uid"] + " " + str(j[0]["num_instances"])' 2>/dev/null) || state=
  if [[ $state == "complete "*" $COUNT" ]]; then
    STUDY=$(awk '{ print $2 }' <<<"$state")
    break
  fi
  sleep 0.2
done
[[ -n $STUDY ]] || die "A's study never complete with $COUNT instances ($state)"
# the books are reloaded asynchronously
for _ in $(seq 100); do
  pg a outbox --json >/dev/null 2>&1 && grep -q "$URA_C" "$RUN/a-peers.toml" && break
  sleep 0.1
done

# ------------------------------------------------------------ end to end
E2E=() SEAL_A=() DELIVER=() FORWARD=()
for ((rep = 1; rep <= REPEAT; rep++)); do
  sync
  rm -rf "$RUN/pacs"/*
  t0=$(now_ns)
  id=
  for _ in $(seq 50); do
    id=$(pg a send "$STUDY" --to-ura "$URA_B" --priority spoed --json 2>/dev/null | json 'j["id"]') && break
    sleep 0.2
  done
  [[ -n $id ]] || die "A refused 'send' (log: $LOGS/relay-a.log)"
  got=0
  for _ in $(seq 6000); do
    got=$(find "$RUN/pacs" -type f | wc -l)
    ((got >= COUNT)) && break
    sleep 0.05
  done
  t1=$(now_ns)
  ((got == COUNT)) || die "the PACS received $got of $COUNT (logs: $LOGS/relay-*.log)"
  item=$(outbox_item a "$id")
  [[ $(json 'j["state"]' <<<"$item") == sent ]] || die "A's outbox: $item"
  E2E+=("$(secs "$t0" "$t1")")
  SEAL_A+=("$(iso_secs "$(json 'j["created_at"]' <<<"$item")" "$(json 'j["package"]["sealed_at"]' <<<"$item")")")
  DELIVER+=("$(iso_secs "$(json 'j["package"]["sealed_at"]' <<<"$item")" "$(json 'j["sent_at"]' <<<"$item")")")
  PACKAGE_BYTES=$(json 'j["package"]["size"]' <<<"$item")
  FORWARD+=("$(awk -v e="${E2E[-1]}" -v s="${SEAL_A[-1]}" -v d="${DELIVER[-1]}" 'BEGIN { printf "%.3f", e - s - d }')")
  say "$(printf 'end to end run %d/%d: %7.3f s (seal %s s, upload+verify+ingest %s s, then forwarding)' \
    "$rep" "$REPEAT" "${E2E[-1]}" "${SEAL_A[-1]}" "${DELIVER[-1]}")"
done
RSS_A=$(peak_rss_kb "${PID[a]}")
RSS_B=$(peak_rss_kb "${PID[b]}")

# ------------------------------------------------ seal vs gpg, same ZIP
# A package for URA C (B's keys, a closed port) stays in A's outbox.
SEAL=()
for ((rep = 1; rep <= REPEAT; rep++)); do
  sync
  id=$(pg a send "$STUDY" --to-ura "$URA_C" --json | json 'j["id"]') || die "send to C refused"
  for _ in $(seq 1200); do
    item=$(outbox_item a "$id")
    [[ $(json 'j.get("package") is not None' <<<"$item") == True ]] && break
    sleep 0.05
  done
  SEAL+=("$(iso_secs "$(json 'j["created_at"]' <<<"$item")" "$(json 'j["package"]["sealed_at"]' <<<"$item")")")
  say "seal run $rep/$REPEAT: ${SEAL[-1]} s"
done
PACKAGE=$RUN/a-data/relay/outbox/$id.pgp
[[ -f $PACKAGE ]] || die "no package at $PACKAGE"
SEALED_BYTES=$(stat -c %s "$PACKAGE")

export GNUPGHOME=$RUN/gnupg
mkdir -m 700 -p "$GNUPGHOME"
gpg --batch -q --import "$RUN/a-data/relay/key.pgp" "$RUN/b-data/relay/key.pgp" 2>>"$LOGS/relay-gpg.log"
FPR_A=$(pg a keys show | sed -n 's/^fingerprint *//p')
FPR_B=$(pg b keys show | sed -n 's/^fingerprint *//p')
GPG=(gpg --batch --yes -q --trust-model always)

ZIP=$RUN/package.zip
timed() { local t0 t1; t0=$(now_ns); "$@" 2>>"$LOGS/relay-gpg.log" || die "$* failed (log: $LOGS/relay-gpg.log)"; t1=$(now_ns); secs "$t0" "$t1"; }
GPG_OPEN=() GPG_SEAL=() GPG_SEAL_Z0=() GPG_SYNC=() REF_STORE=()
for ((rep = 1; rep <= REPEAT; rep++)); do
  sync
  GPG_OPEN+=("$(timed "${GPG[@]}" --output "$ZIP" --decrypt "$PACKAGE")")
  GPG_SEAL+=("$(timed "${GPG[@]}" -u "$FPR_A" -r "$FPR_B" --output "$RUN/gpg.pgp" --sign --encrypt "$ZIP")")
  GPG_SEAL_Z0+=("$(timed "${GPG[@]}" -u "$FPR_A" -r "$FPR_B" -z 0 --output "$RUN/gpg-z0.pgp" --sign --encrypt "$ZIP")")
  # made as durable as pushgate's outbox file: fsync of the output
  GPG_SYNC+=("$(timed sync "$RUN/gpg-z0.pgp")")
done
ZIP_BYTES=$(stat -c %s "$ZIP")

# the hand-made pipeline's last step: the files into a fresh storescp
stop_all
free_port REF_PORT
for ((rep = 1; rep <= REPEAT; rep++)); do
  rm -rf "$RUN/ref-pacs"
  start_storescp ref "$REF_PORT" "$RUN/ref-pacs"
  t0=$(now_ns)
  TCP_NODELAY=1 "$STORESCU" -aec STORESCP 127.0.0.1 "$REF_PORT" "${FILES[@]}" >"$LOGS/relay-storescu-ref.log" 2>&1 ||
    die "storescu to the reference storescp failed"
  t1=$(now_ns)
  REF_STORE+=("$(secs "$t0" "$t1")")
  stop_all
done

# ------------------------------------------------------------------- report
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2) }'; }
e2e=$(median "${E2E[@]}") seal=$(median "${SEAL[@]}") deliver=$(median "${DELIVER[@]}") fwd=$(median "${FORWARD[@]}")
gopen=$(median "${GPG_OPEN[@]}") gseal=$(median "${GPG_SEAL[@]}") gz0=$(median "${GPG_SEAL_Z0[@]}") refstore=$(median "${REF_STORE[@]}")
gsync=$(awk -v a="$gz0" -v b="$(median "${GPG_SYNC[@]}")" 'BEGIN { printf "%.3f", a + b }')
ref_e2e=$(awk -v a="$gz0" -v b="$gopen" -v c="$refstore" 'BEGIN { printf "%.3f", a + b + c }')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
report=$OUT/relay-latest.txt
{
  echo "relay benchmark: $COUNT CT ${SIZE}x${SIZE}x16 ($DATA_MB MB of files; ZIP $((ZIP_BYTES / 1000000)) MB; package $((PACKAGE_BYTES / 1000000)) MB), ${cpu:-unknown CPU} ($(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "pushgate $("$PUSHGATE" --version | awk '{ print $2 }'), $(gpg --version | head -n 1), seconds = median of $REPEAT run(s), MB = 10^6 bytes"
  printf '%-44s %8s %8s\n' step seconds MB/s
  row() { awk -v n="$1" -v s="$2" -v b="$3" 'BEGIN { printf "%-44s %8.2f %8.0f\n", n, s, b / 1e6 / s }'; }
  row "pushgate end to end A -> B -> storescp" "$e2e" "$DATA_BYTES"
  row "  A: package and encrypt (seal)" "$seal" "$ZIP_BYTES"
  row "  A -> B: upload; B verifies, ingests, receipt" "$deliver" "$PACKAGE_BYTES"
  row "  B -> storescp: forwarding" "$fwd" "$DATA_BYTES"
  row "gpg --sign --encrypt, same ZIP (compressing)" "$gseal" "$ZIP_BYTES"
  row "gpg --sign --encrypt -z 0, same ZIP" "$gz0" "$ZIP_BYTES"
  row "gpg --sign --encrypt -z 0 + fsync of output" "$gsync" "$ZIP_BYTES"
  row "gpg --decrypt, pushgate's package" "$gopen" "$PACKAGE_BYTES"
  row "storescu -> fresh storescp" "$refstore" "$DATA_BYTES"
  row "reference pipeline (gpg -z0 + gpg -d + storescu)" "$ref_e2e" "$DATA_BYTES"
  awk -v p="$seal" -v g="$gseal" -v z="$gz0" -v y="$gsync" -v e="$e2e" -v r="$ref_e2e" \
    'BEGIN { printf "ratios (>1: pushgate faster): seal vs gpg default %.2fx, vs gpg -z 0 %.2fx, vs gpg -z 0 + fsync %.2fx; end to end vs reference pipeline %.2fx\n", g / p, z / p, y / p, r / e }'
  echo "peak RSS: A $(((RSS_A + 512) / 1024)) MB, B $(((RSS_B + 512) / 1024)) MB (whole daemon lifetime, intake of the study included)"
  echo "seal = A's outbox created_at -> sealed_at: reads the $COUNT files twice (SHA-256 for the manifest, then the ZIP), signs, encrypts, fsyncs the package"
  echo "gpg's default compresses (this generated study: ZIP $((ZIP_BYTES / 1000000)) MB -> $(($(stat -c %s "$RUN/gpg.pgp") / 1000000)) MB; real CT compresses far less); pushgate, like -z 0, does not"
} | tee "$report"
say "(table written to ${report#"$ROOT"/}; logs in ${LOGS#"$ROOT"/}/relay-*)"
