#!/usr/bin/env bash
# bench/compare.sh — two builds of dlc side by side: is a change faster or
# slower? For a refactor that must cost nothing, or an optimization.
#
#   bench/compare.sh OLD/dlc NEW/dlc      (REPS=5 by default)
#
# For every example, the seed at a million points and mlp256 (one thread):
# the training time (`--time`'s train phase), the compile time
# (its differentiate + build IR + optimize + JIT) and the whole run's wall
# time, each the best of REPS runs, the two builds run interleaved so that
# drift of the machine hits both. The last columns are NEW / OLD.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 2 ] && [ -x "$1" ] && [ -x "$2" ] || { echo "usage: bench/compare.sh OLD/dlc NEW/dlc" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2") reps=${REPS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/examples/data" "$tmp/"
for f in "$root"/examples/*.dl; do
  sed 's/, log_every = [0-9]*//' "$f" >"$tmp/$(basename "$f")"
done
sed -e 's/linspace(-pi, pi, 2000)/linspace(-pi, pi, 1000000)/' -e 's/steps = 2000/steps = 200/' \
    -e 's/, log_every = 100//' -e 's|lr = 5e-6|lr = 5e-6 * 2000 / 1000000|' \
    "$root/examples/legendre.dl" >"$tmp/seed_1m.dl"
sed 's/@STEPS@/20/' "$root/bench/mlp256.dl.in" >"$tmp/mlp256.dl"

# run DLC FILE: "TRAIN_MS COMPILE_MS WALL_MS" of one run.
run() {
  local t0 t1 line
  t0=$(date +%s%N)
  line=$(cd "$tmp" && "$1" run --time --threads 1 "$2" 2>&1 >/dev/null | grep '^time:')
  t1=$(date +%s%N)
  echo "$line" | awk -v wall=$(((t1 - t0) / 1000)) '{
    for (i = 1; i <= NF; i++) { v = $(i + 1); sub(/,|;/, "", v)
      if ($i == "train") tr = v
      if ($i == "differentiate" || $i == "IR" || $i == "optimize" || $i == "JIT") c += v }
    printf "%s %s %.3f\n", tr, c, wall / 1000 }'
}
printf "%-14s %12s %12s %7s %12s %12s %7s %11s %11s %7s\n" model "old train ms" "new train ms" ratio \
  "old compile" "new compile" ratio "old run ms" "new run ms" ratio
for f in "$tmp"/*.dl; do
  name=$(basename "$f" .dl)
  declare -A best=()
  for _ in $(seq "$reps"); do
    for which in old new; do
      read -r tr c w < <(run "${!which}" "$f")
      for k in tr c w; do
        key=$which$k
        best[$key]=$(awk -v a="${best[$key]:-}" -v b="${!k}" 'BEGIN { print (a == "" || b < a) ? b : a }')
      done
    done
  done
  awk -v name="$name" -v otr="${best[oldtr]}" -v ntr="${best[newtr]}" -v oc="${best[oldc]}" \
      -v nc="${best[newc]}" -v ow="${best[oldw]}" -v nw="${best[neww]}" 'BEGIN {
    o = otr; m = ntr
    printf "%-14s %12.2f %12.2f %7.3f %12.2f %12.2f %7.3f %11.1f %11.1f %7.3f\n", name, o, m, m / o,
           oc, nc, nc / oc, ow, nw, nw / ow }'
  unset best
done
