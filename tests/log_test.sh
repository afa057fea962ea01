#!/usr/bin/env bash
# log_test.sh — --log beyond one clean run: a log that cannot be written
# midway (a full disk: /dev/full) is an error that keeps the training and
# the params; and a run resumed with --resume goes on in the same log.
#
#   log_test.sh DLC EXAMPLES_DIR
set -u
dlc=$(realpath "$1") examples=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

ln -s /dev/full full.csv
"$dlc" run --log full.csv "$examples/legendre.dl" >out 2>err
rc=$?
[ "$rc" -eq 1 ] || fail "a full disk under the log: exit $rc, not 1"
grep -q "error: cannot write the log 'full.csv': No space left on device" err || fail "no error for the full disk: $(cat err)"
grep -q '^Result: y = ' out || fail "after the log failed, the program did not go on: $(cat out)"

# A long train stopped by SIGINT (it saves), then resumed: one log, one
# header, the steps in order to the last.
cat > long.dl <<'DL'
x = linspace(-1, 1, 20000)
param a = 0.0
loss = mean((a * x - x)^2)
train(steps = 3000000, optimizer = sgd(lr = 1e-6), log_every = 50000)
DL
for ext in csv jsonl; do
  rm -f ck.json "log.$ext"
  # Stopped once it has logged a line (however slow the machine is).
  "$dlc" run long.dl --threads 1 --save ck.json --log "log.$ext" >/dev/null 2>&1 &
  pid=$!
  want=$([ "$ext" = csv ] && echo 2 || echo 1)
  for _ in $(seq 600); do
    [ -f "log.$ext" ] && [ "$(wc -l <"log.$ext")" -ge "$want" ] && break
    sleep 0.05
  done
  kill -INT "$pid"
  wait "$pid"
  [ -s ck.json ] || { fail "the stopped run saved nothing"; continue; }
  before=$(wc -l <"log.$ext")
  "$dlc" run long.dl --threads 1 --resume ck.json --log "log.$ext" >/dev/null 2>err || fail "the resume failed: $(cat err)"
  if [ "$ext" = csv ]; then
    steps=$(tail -n +2 log.csv | cut -d, -f2)
    [ "$(grep -c '^train,' log.csv)" -eq 1 ] || fail "the resumed CSV log has $(grep -c '^train,' log.csv) headers"
  else
    steps=$(sed 's/.*"step": \([0-9]*\).*/\1/' log.jsonl)
  fi
  [ "$(wc -l <"log.$ext")" -gt "$before" ] || fail "$ext: the resumed run wrote nothing to the log"
  sort -n -c <<<"$steps" 2>/dev/null && [ "$(sort -n -u <<<"$steps" | wc -l)" -eq "$(wc -l <<<"$steps")" ] ||
    fail "$ext: the steps of the resumed log are not in order: $(tr '\n' ' ' <<<"$steps")"
  [ "$(head -1 <<<"$steps")" = 49999 ] || fail "$ext: the log does not begin at the first logged step (rewritten?)"
  [ "$(tail -1 <<<"$steps")" = 2999999 ] || fail "$ext: the log does not end at the last step"
done

[ "$fails" -eq 0 ] && echo "log: all checks passed"
exit $((fails > 0))
