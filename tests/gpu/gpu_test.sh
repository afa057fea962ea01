#!/usr/bin/env bash
# gpu_test.sh — the GPU target on machines with or without CUDA.
#
#   gpu_test.sh DLC ptx FILE.dl ARCH     `dlc emit ptx` gives a kernel for ARCH,
#                                        with libdevice (where there is one) and
#                                        with dlc's own math
#   gpu_test.sh DLC ptxas FILE.dl ARCH   ptxas assembles that kernel for ARCH
#                                        (skipped, 77, without ptxas)
#   gpu_test.sh DLC stub FILE.dl         `dlc run --target gpu` against CUDA's
#                                        stub library: one line, exit 1
#                                        (skipped without the stub)
#   gpu_test.sh DLC nodriver FILE.dl     the same with no driver at all
#   gpu_test.sh DLC match FILE.dl [--f64]  on a GPU: `dlc run --target gpu`
#                                        prints what `dlc run` prints, numbers
#                                        within float32 tolerance (rtol 1e-3,
#                                        atol 1e-5; 1e-9 with --f64); skipped,
#                                        77, where there is no GPU
#
# CUDA_HOME (default /usr/local/cuda) says where CUDA is.
set -u
dlc=$1 mode=$2 file=$3 arch=${4:-sm_90}
cuda=${CUDA_HOME:-/usr/local/cuda}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; [ -s "$tmp/err" ] && sed 's/^/  stderr: /' "$tmp/err" >&2; exit 1; }

# The run of dlc with --target gpu, against a driver library: exit 1, and
# stderr one line with the expected reason.
run_without_gpu() {
  DLC_LIBCUDA=$1 "$dlc" run "$file" --target gpu >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines
  lines=$(wc -l <"$tmp/err")
  [ "$rc" -eq 1 ] || fail "exit status $rc, expected 1"
  [ "$lines" -eq 1 ] || fail "$lines lines on stderr, expected one"
  grep -q "^dlc: error: $2" "$tmp/err" || fail "stderr does not say '$2'"
  [ -s "$tmp/out" ] && fail "the program ran: $(head -1 "$tmp/out")"
  exit 0
}

case $mode in
  ptx|ptxas)
    if [ "$mode" = ptxas ] && [ ! -x "$cuda/bin/ptxas" ]; then
      echo "no $cuda/bin/ptxas: skipped"; exit 77
    fi
    # With libdevice where there is one, and with our own math.
    for libdevice in "${DLC_LIBDEVICE:-$cuda/nvvm/libdevice/libdevice.10.bc}" /nonexistent/libdevice.10.bc; do
      DLC_LIBDEVICE=$libdevice "$dlc" emit ptx "$file" --gpu-arch "$arch" >"$tmp/k.ptx" 2>"$tmp/err" ||
        fail "dlc emit ptx exited with $? (DLC_LIBDEVICE=$libdevice)"
      grep -q "^\.target $arch\$" "$tmp/k.ptx" || fail "no .target $arch"
      grep -q "^\.visible \.entry dl_steps(" "$tmp/k.ptx" || fail "no kernel dl_steps"
      [ "$mode" = ptx ] && continue
      "$cuda/bin/ptxas" -arch="$arch" "$tmp/k.ptx" -o "$tmp/k.cubin" 2>"$tmp/err" ||
        fail "ptxas -arch=$arch rejected it (DLC_LIBDEVICE=$libdevice)"
      [ -s "$tmp/k.cubin" ] || fail "ptxas wrote nothing"
    done ;;
  stub)
    stub=$cuda/lib64/stubs/libcuda.so
    [ -f "$stub" ] || { echo "no $stub: skipped"; exit 77; }
    run_without_gpu "$stub" "no CUDA driver: .* is CUDA's stub library" ;;
  nodriver)
    run_without_gpu "$tmp/no-such-libcuda.so.1" "no CUDA driver: cannot load" ;;
  match)
    flags=${4:-}
    "$dlc" run "$file" --target gpu $flags >"$tmp/gpu" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 0 ] && grep -q "^dlc: error: no CUDA" "$tmp/err"; then
      echo "no GPU: skipped"; exit 77
    fi
    [ $rc -eq 0 ] || fail "dlc run --target gpu exited with $rc"
    "$dlc" run "$file" $flags >"$tmp/cpu" 2>/dev/null || fail "dlc run on the CPU failed"
    tol=1e-3; atol=1e-5
    [ "$flags" = --f64 ] && { tol=1e-9; atol=1e-12; }
    # Line by line; fields that are numbers within the tolerance, the rest equal.
    awk -v rtol=$tol -v atol=$atol '
      function num(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
      NR == FNR { cpu[FNR] = $0; n = FNR; next }
      { m = FNR
        nc = split(cpu[FNR], c, /[ ,=\[\]()]+/); ng = split($0, g, /[ ,=\[\]()]+/)
        if (nc != ng) { print "line " FNR ": cpu \"" cpu[FNR] "\", gpu \"" $0 "\""; bad = 1; next }
        for (i = 1; i <= nc; i++) {
          if (num(c[i]) && num(g[i])) {
            d = c[i] - g[i]; d = d < 0 ? -d : d; s = c[i] < 0 ? -c[i] : c[i]
            if (d > atol + rtol * s) { print "line " FNR ": " c[i] " on the cpu, " g[i] " on the gpu"; bad = 1 }
          } else if (c[i] != g[i]) { print "line " FNR ": cpu \"" cpu[FNR] "\", gpu \"" $0 "\""; bad = 1 }
        } }
      END { if (m != n) { print n " lines on the cpu, " m " on the gpu"; bad = 1 }; exit bad }
    ' "$tmp/cpu" "$tmp/gpu" >&2 || fail "the GPU's results differ from the CPU's" ;;
  *) fail "unknown mode $mode" ;;
esac
