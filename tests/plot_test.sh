#!/usr/bin/env bash
# plot_test.sh DLC PLOT_FILES — plots written by `dlc run`, checked.
#
# A program that trains twice and plots in each format, run with
# --plot-loss into each format, in a fresh directory (paths are relative
# to the current one); plot_files checks each file. Then the refusals
# that come before anything runs: --plot-loss into a missing directory
# (exit 1, nothing printed on stdout) and into a name with no format
# (a usage error, exit 2).
set -euo pipefail
dlc=$(realpath "$1")
check=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
cat > fit.dl <<'DL'
x = linspace(-pi, pi, 200)
y = sin(x) + 0.1 * randn(200, seed = 1)
param a = 0.0
param b = 0.5
y_pred = a + b * x - 0.1 * x^3
loss = mean((y_pred - y)^2)
train(steps = 200, optimizer = adam(lr = 0.05))
train(steps = 100, optimizer = sgd(lr = 0.01))
plot("fit.png", x, y, y_pred, labels = ["data", "fit"], title = "a fit", xlabel = "x", ylabel = "y")
plot("fit.svg", x, y, y_pred, labels = ["data", "fit"])
plot("fit.pdf", x, y_pred)
print("done")
DL
for f in png svg pdf; do
  out=$("$dlc" run fit.dl --plot-loss "loss.$f")
  [ "$out" = done ] || { echo "FAIL: dlc run printed '$out'"; exit 1; }
done
"$check" fit.png fit.svg fit.pdf loss.png loss.svg loss.pdf
if ls ./*.tmp.* 2>/dev/null; then echo "FAIL: temporary files left"; exit 1; fi

# Hostile ranges: the whole double range (a span that overflows), steps
# below a value's ulp (a tick loop that would never end), one point, none
# finite. Each is drawn, in a file and in the REPL's braille, in time.
cat > hostile.dl <<'DL'
x = linspace(0, 1, 3)
huge = [-1e308, 0, 1e308]
ulp = [1e16, 1e16 + 2, 1e16 + 4]
bad = log(x - 2)
plot("huge.png", x, huge)
plot("ulp.png", ulp, x)
plot("ulp.svg", x, ulp)
plot("one.pdf", [1], [2])
plot("bad.png", x, bad)
print("done")
DL
out=$(timeout 60 "$dlc" run --f64 hostile.dl 2>/dev/null) && [ "$out" = done ] ||
  { echo "FAIL: hostile plots: '$out'"; exit 1; }
"$check" huge.png ulp.png ulp.svg one.pdf bad.png
out=$(printf '%s\n' 'x = linspace(0, 1, 3)' 'huge = [-1e308, 0, 1e308]' 'ulp = [1e16, 1e16 + 2, 1e16 + 4]' \
        ':plot x, huge' ':plot ulp, x' | timeout 60 "$dlc" repl --f64 2>&1) ||
  { echo "FAIL: the REPL's hostile plots"; exit 1; }
case $out in *"1e+308"*"1e+16"*) ;; *) echo "FAIL: the REPL's hostile plots drew: $out"; exit 1 ;; esac

set +e
out=$("$dlc" run fit.dl --plot-loss no/such/dir/loss.png 2>err)
rc=$?
set -e
[ $rc -eq 1 ] && [ -z "$out" ] && grep -q "cannot write the loss plot 'no/such/dir/loss.png'" err ||
  { echo "FAIL: --plot-loss into a missing directory: exit $rc, stdout '$out'"; cat err; exit 1; }
set +e
"$dlc" run fit.dl --plot-loss loss.jpg 2>err
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "plot-loss needs a file name ending in .png, .svg or .pdf" err ||
  { echo "FAIL: --plot-loss loss.jpg: exit $rc"; cat err; exit 1; }
echo ok
