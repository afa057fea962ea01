#!/usr/bin/env bash
# bench/run.sh — dlc's training step against hand-written C, and PyTorch.
#
#   bench/run.sh            (after scripts/dev.sh setup; REPS=5 by default)
#
# Per-step time of a program is measured so that start-up and compile time
# cancel: the same model at two step counts, (t(hi) - t(lo)) / (hi - lo),
# each time the best of REPS runs. dlc and its C reference run interleaved
# (dlc lo, dlc hi, C lo, C hi, then again) so that drift of the machine
# hits both. PyTorch eager times its own loop (it has no compile step), when
# `python3 -c "import torch"` works. Then dlc on one thread against all
# cores, the same way.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dlc=${BUILD_DIR:-$root/build}/dlc
reps=${REPS:-5}
[ -x "$dlc" ] || { echo "bench: build dlc first (scripts/dev.sh setup)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=gcc
flags=(-O3 -march=native -ffast-math)
if command -v clang >/dev/null; then cc=clang; flags+=(-fveclib=libmvec); fi
for ref in seed_ref peak_ref; do
  "$cc" "${flags[@]}" -o "$tmp/$ref" "$root/bench/$ref.c" -lm -lmvec
done

ns() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $((t1 - t0)); }

# seed_dl N STEPS: the seed example at N points, no log lines, its rate
# scaled by 2000 / N as in seed_ref.c (the loss grows with N).
seed_dl() {
  sed -e "s/linspace(-pi, pi, 2000)/linspace(-pi, pi, $1)/" -e "s/steps = 2000/steps = $2/" \
      -e "s/, log_every = 100//" -e "s|lr = 5e-6|lr = 5e-6 * 2000 / $1|" \
      "$root/examples/legendre.dl" >"$tmp/seed_$1_$2.dl"
  echo "$tmp/seed_$1_$2.dl"
}
peak_dl() {
  sed -e "s/@N@/$1/" -e "s/@STEPS@/$2/" "$root/bench/peak.dl.in" >"$tmp/peak_$1_$2.dl"
  echo "$tmp/peak_$1_$2.dl"
}

# measure MODEL N HI: prints "dlc_us c_us"
measure() {
  local model=$1 n=$2 hi=$3 lo=$(($3 / 10))
  local dl_lo dl_hi best=() r k
  dl_lo=$("${model}_dl" "$n" "$lo"); dl_hi=$("${model}_dl" "$n" "$hi")
  best=(999999999999 999999999999 999999999999 999999999999)
  for ((r = 0; r < reps; r++)); do
    local t=($(ns "$dlc" run --threads 1 "$dl_lo") $(ns "$dlc" run --threads 1 "$dl_hi") \
             $(ns "$tmp/${model}_ref" "$n" "$lo") $(ns "$tmp/${model}_ref" "$n" "$hi"))
    for k in 0 1 2 3; do ((t[k] < best[k])) && best[k]=${t[k]}; done
  done
  awk -v a="${best[0]}" -v b="${best[1]}" -v c="${best[2]}" -v d="${best[3]}" -v s=$((hi - lo)) \
    'BEGIN { printf "%.3f %.3f", (b - a) / s / 1e3, (d - c) / s / 1e3 }'
}

python=
for p in python3 /usr/bin/python3; do
  if "$p" -c "import torch" 2>/dev/null; then python=$p; break; fi
done
# torch_us MODEL N STEPS
torch_us() {
  "$python" "$root/bench/$1_torch.py" "$2" "$3" 2>/dev/null | awk '/per_step_us/ { print $2 }'
}
have_torch=no
[ -n "$python" ] && have_torch=yes

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; dlc on one thread (--threads 1)"
printf "%-6s %9s %12s %12s %8s %14s %10s\n" model N "dlc us/step" "C us/step" "dlc/C" "torch us/step" "torch/dlc"
for spec in "seed 2000 400000" "seed 100000 20000" "seed 1000000 2000" "peak 1000000 600"; do
  set -- $spec
  read -r d c <<<"$(measure "$1" "$2" "$3")"
  t=-; ratio=-
  if [ $have_torch = yes ]; then
    t=$(torch_us "$1" "$2" $((200000000 / $2 < 2000 ? 200000000 / $2 : 2000)))
    ratio=$(awk -v t="$t" -v d="$d" 'BEGIN { printf "%.0f", t / d }')
  fi
  printf "%-6s %9s %12s %12s %8s %14s %10s\n" "$1" "$2" "$d" "$c" \
    "$(awk -v d="$d" -v c="$c" 'BEGIN { printf "%.2f", d / c }')" "$t" "$ratio"
done
[ $have_torch = yes ] || echo "(PyTorch not installed: apt-get install python3-torch for its column)"

# Threads: the seed at N = 1M on one thread and on every core, interleaved.
cores=$(nproc)
if ((cores > 1)); then
  lo_dl=$(seed_dl 1000000 200); hi_dl=$(seed_dl 1000000 2000)
  best=(999999999999 999999999999 999999999999 999999999999)
  for ((r = 0; r < reps; r++)); do
    t=($(ns "$dlc" run --threads 1 "$lo_dl") $(ns "$dlc" run --threads 1 "$hi_dl") \
       $(ns "$dlc" run --threads "$cores" "$lo_dl") $(ns "$dlc" run --threads "$cores" "$hi_dl"))
    for k in 0 1 2 3; do ((t[k] < best[k])) && best[k]=${t[k]}; done
  done
  awk -v a="${best[0]}" -v b="${best[1]}" -v c="${best[2]}" -v d="${best[3]}" -v n="$cores" \
    'BEGIN { one = (b - a) / 1800 / 1e3; many = (d - c) / 1800 / 1e3;
             printf "seed N=1000000: %.1f us/step on 1 thread, %.1f on %d: %.2fx faster\n", one, many, n, one / many }'
fi

# The whole seed run and its compile phases.
best=999999999999
for ((r = 0; r < reps; r++)); do t=$(ns "$dlc" run "$root/examples/legendre.dl"); ((t < best)) && best=$t; done
echo "whole 'dlc run examples/legendre.dl': $(awk -v t="$best" 'BEGIN { printf "%.1f", t / 1e6 }') ms"
"$dlc" run --time "$root/examples/legendre.dl" 2>&1 >/dev/null | sed 's/^/seed /'
