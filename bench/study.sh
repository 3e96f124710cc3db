# Sourced by intake.sh and retrieve.sh: the benchmark study, generated once
# into bench/out/data and reused while count and size match (a --count other
# than 500 gets its own bench/out/data-N). Needs COUNT, SIZE, DATA, OUT, ROOT,
# SAMPLES, say and die; sets FILES, DATA_BYTES and DATA_MB.
[[ $COUNT == 500 ]] || DATA=$OUT/data-$COUNT
STAMP="count=$COUNT size=$SIZE"
shopt -s nullglob
FILES=("$DATA"/CT*.dcm)
if [[ $(cat "$DATA/.params" 2>/dev/null) != "$STAMP" || ${#FILES[@]} -ne $COUNT ]]; then
  say "generating $COUNT CT slices of ${SIZE}x${SIZE} into ${DATA#"$ROOT"/}"
  rm -rf "$DATA"
  "$SAMPLES" bench "$DATA" --count "$COUNT" --size "$SIZE" >&2
  echo "$STAMP" >"$DATA/.params"
  FILES=("$DATA"/CT*.dcm)
  ((${#FILES[@]} == COUNT)) || die "generator wrote ${#FILES[@]} files into $DATA, expected $COUNT"
fi
shopt -u nullglob
DATA_BYTES=$(cat "${FILES[@]}" | wc -c) # also warms the page cache
DATA_MB=$(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')
