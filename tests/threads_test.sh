#!/usr/bin/env bash
# threads_test.sh — a program's output does not depend on the number of
# training threads (docs/language.md §7).
#
#   threads_test.sh DLC FILE.dl [REPEATS]
#
# Runs FILE (with the arguments of its `# args:` line) on 1 thread, then
# REPEATS times (default: $DLC_THREADS_REPEATS, else 4) on each of 2, 3
# and 7 threads, and fails unless every run prints what the one-thread run
# printed, bit for bit, with the same exit status. A race shows only in
# some runs, hence the repeats; 7 threads on a machine with fewer cores
# also interleave the threads in ways 2 on 2 cores do not. The one-thread
# run must itself end as the file says (tests/e2e_runner.c's `# exit:`,
# else 1 with `# expect-error:` lines, else 0): a program that fails alike
# on every thread count (a JIT that refuses it) is a failure, not a match.
# Each run also writes --log (the params' values at every logged step,
# read from the buffers the threads share): the same too, but for the
# seconds.
set -u
dlc=$1 file=$2 repeats=${3:-${DLC_THREADS_REPEATS:-4}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
read -ra args <<<"$(sed -n 's/^# args: //p' "$file" | head -1)"

# log N: the --log file of the run on N threads, without its seconds column
log() { awk -F, -v OFS=, '{ $5 = ""; print }' "$tmp/$1.csv"; }
"$dlc" run "${args[@]}" "$file" --threads 1 --log "$tmp/1.csv" >"$tmp/want" 2>"$tmp/err"
want_rc=$?
expect_rc=$(sed -n 's/^# exit: \([0-9]*\).*/\1/p' "$file" | head -1)
[ -n "$expect_rc" ] || expect_rc=$(grep -q '^# expect-error:' "$file" && echo 1 || echo 0)
if [ "$want_rc" -ne "$expect_rc" ]; then
  echo "FAIL: $file on 1 thread: exit $want_rc, and the file expects $expect_rc" >&2
  head -20 "$tmp/err" >&2
  exit 1
fi
[ -s "$tmp/want" ] || { echo "FAIL: $file printed nothing on 1 thread" >&2; cat "$tmp/err" >&2; exit 1; }
status=0
for threads in 2 3 7; do
  for ((k = 1; k <= repeats; k++)); do
    "$dlc" run "${args[@]}" "$file" --threads "$threads" --log "$tmp/$threads.csv" >"$tmp/got" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want_rc" ] || ! cmp -s "$tmp/want" "$tmp/got" || [ "$(log 1)" != "$(log "$threads")" ]; then
      echo "FAIL: $file on $threads threads (run $k): exit $rc (1 thread: $want_rc)" >&2
      diff "$tmp/want" "$tmp/got" | head -20 >&2
      diff <(log 1) <(log "$threads") | head -20 >&2
      status=1
      break
    fi
  done
done
[ "$status" -eq 0 ] && echo "$file: the same on 1, 2, 3 and 7 threads ($repeats runs each)"
exit "$status"
