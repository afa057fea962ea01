#!/usr/bin/env bash
# bench/matrix.sh — the matrix examples: dlc's training step against
# PyTorch eager (one thread), and the nn tutorial against hand-written C.
#
#   bench/matrix.sh          (after scripts/dev.sh setup; REPS=5 by default)
#
# dlc's step time is its `--time` train phase (compile time excluded)
# divided by the steps, the best of REPS runs; C's is a run of STEPS steps
# less a run of none; PyTorch times its own loop (bench/matrix_torch.py).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dlc=${BUILD_DIR:-$root/build}/dlc
reps=${REPS:-5}
[ -x "$dlc" ] || { echo "bench: build dlc first (scripts/dev.sh setup)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/examples/data" "$tmp/"

# us_per_step FILE.dl STEPS: the best train time of REPS runs, per step.
us_per_step() {
  local best=
  for _ in $(seq "$reps"); do
    local ms
    ms=$("$dlc" run --time --threads 1 "$1" 2>&1 >/dev/null | sed -n 's/.*train \([0-9.]*\) ms.*/\1/p')
    best=$(echo "$ms ${best:-$ms}" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  echo "$best $2" | awk '{printf "%.2f", $1 * 1000 / $2}'
}

declare -A steps=([nn_tutorial]=2000 [mlp_sin]=1000 [iris]=500 [digits]=480 [mlp256]=20)
for e in nn_tutorial mlp_sin iris digits; do
  sed 's/, log_every = [0-9]*//' "$root/examples/$e.dl" >"$tmp/$e.dl"
done
sed 's/@STEPS@/20/' "$root/bench/mlp256.dl.in" >"$tmp/mlp256.dl"

declare -A torch
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  while read -r name us; do torch[$name]=$us; done < <(/usr/bin/python3 "$root/bench/matrix_torch.py")
fi

gcc -O3 -march=native -o "$tmp/nn_ref" "$root/bench/nn_tutorial_ref.c" -lm
c_best=
for _ in $(seq "$reps"); do
  t0=$(date +%s%N); "$tmp/nn_ref" 20000 >/dev/null; t1=$(date +%s%N); "$tmp/nn_ref" 0 >/dev/null; t2=$(date +%s%N)
  us=$(( ((t1 - t0) - (t2 - t1)) / 20000 ))
  c_best=$(( ${c_best:-$us} < us ? ${c_best:-$us} : us ))
done

printf "%-12s %12s %14s %10s\n" model "dlc us/step" "torch us/step" "torch/dlc"
for e in nn_tutorial mlp_sin iris digits mlp256; do
  d=$(us_per_step "$tmp/$e.dl" "${steps[$e]}")
  t=${torch[$e]:-}
  printf "%-12s %12s %14s %10s\n" "$e" "$d" "${t:--}" "$( [ -n "$t" ] && echo "$t $d" | awk '{printf "%.1f", $1 / $2}' || echo -)"
done
echo "hand-written C, nn_tutorial: ${c_best} ns/step (dlc's is in the first row)"
