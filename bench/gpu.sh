#!/usr/bin/env bash
# gpu.sh — the seed on the GPU: dlc --target gpu against PyTorch eager and
# torch.compile on the same GPU, at N = 2,000 and N = 10,000,000.
#
#   bench/gpu.sh                 DLC=build/dlc, REPS=5 by default
#
# dlc's per-step time is (t(hi) - t(lo)) / (hi - lo) for the seed at two
# step counts, each the best of REPS runs, so that process start, the PTX
# compile, the driver's module load and the copies to the device cancel.
# PyTorch times its own loop after warm-up steps (bench/seed_torch.py).
# First, every example's output on the GPU against the CPU's
# (tests/gpu/gpu_test.sh match: float32 tolerance, and --f64).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dlc=${DLC:-$root/build/dlc}
reps=${REPS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The seed at N points, STEPS steps, no log lines, its rate scaled by
# 2000 / N (the loss grows with N), as bench/run.sh has it.
seed_dl() {
  sed -e "s/linspace(-pi, pi, 2000)/linspace(-pi, pi, $1)/" -e "s/steps = 2000/steps = $2/" \
      -e "s/, log_every = 100//" -e "s|lr = 5e-6|lr = 5e-6 * 2000 / $1|" \
      "$root/examples/legendre.dl" >"$tmp/seed_$1_$2.dl"
  echo "$tmp/seed_$1_$2.dl"
}

best_us() {  # best wall time (µs) of REPS runs of: dlc run FILE --target gpu
  local best=
  for _ in $(seq "$reps"); do
    local t0 t1
    t0=$(date +%s%N); "$dlc" run "$1" --target gpu >/dev/null; t1=$(date +%s%N)
    best=$(awk -v a="${best:-1e18}" -v b=$(( (t1 - t0) / 1000 )) 'BEGIN { print (b < a ? b : a) }')
  done
  echo "$best"
}

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo unknown)"
"$dlc" run "$root/examples/legendre.dl" --target gpu >/dev/null ||
  { echo "gpu.sh: $dlc cannot train on a GPU here (above: why)" >&2; exit 1; }
python3 -c "import torch; assert torch.cuda.is_available()" ||
  { echo "gpu.sh: PyTorch with CUDA is needed" >&2; exit 1; }
for f in "$root"/examples/*.dl; do
  for flags in "" --f64; do
    if (cd "$root" && tests/gpu/gpu_test.sh "$dlc" match "$f" $flags >/dev/null); then
      echo "$(basename "$f") ${flags:-f32}: the GPU matches the CPU"
    else
      echo "$(basename "$f") ${flags:-f32}: MISMATCH (or no GPU)"
    fi
  done
done

# dlc's µs per step for the seed at N points, by two step counts.
dlc_per_step() {
  local t_lo t_hi
  t_lo=$(best_us "$(seed_dl "$1" "$2")")
  t_hi=$(best_us "$(seed_dl "$1" "$3")")
  awk -v a="$t_lo" -v b="$t_hi" -v l="$2" -v h="$3" 'BEGIN { printf "%.3f", (b - a) / (h - l) }'
}

echo "| N | dlc µs/step | PyTorch eager µs/step | torch.compile µs/step | eager / dlc | compile / dlc |"
echo "|---|---|---|---|---|---|"
for spec in "2000 2000 20000" "10000000 200 2000"; do
  set -- $spec
  n=$1 lo=$2 hi=$3
  dlc_us=$(dlc_per_step "$n" "$lo" "$hi")
  steps=$(( n > 1000000 ? 200 : 2000 ))
  eager=$(python3 "$root/bench/seed_torch.py" "$n" "$steps" cuda | awk '{ print $2 }')
  compiled=$(python3 "$root/bench/seed_torch.py" "$n" "$steps" cuda-compile | awk '{ print $2 }')
  awk -v n="$n" -v d="$dlc_us" -v e="$eager" -v c="$compiled" \
    'BEGIN { printf "| %d | %.2f | %.2f | %.2f | %.1f | %.1f |\n", n, d, e, c, e / d, c / d }'
done

# Many steps per launch (the persistent kernel) against one launch a step.
echo "seed N=2000: $(dlc_per_step 2000 2000 20000) us/step with up to 1024 steps per launch," \
     "$(DLC_GPU_CHUNK=1 dlc_per_step 2000 2000 20000) with one step per launch"
