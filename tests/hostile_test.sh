#!/usr/bin/env bash
# hostile_test.sh — dlc against inputs that are huge, endless, not what
# they claim, or places it cannot write (docs/language.md §4.7, §9).
#
#   hostile_test.sh DLC PEAK_RSS MODE
#
#   csv_memory        loading a CSV of 3,000,000 cells takes about 8 bytes
#                     a cell (the numbers), measured against a program
#                     that loads nothing
#   csv_special       a CSV that is a symlink to /dev/zero or /dev/urandom,
#                     a FIFO, a directory or a sparse 1.2 GB file: refused
#                     at once with what it is
#   program_special   the program itself a symlink to /dev/zero or
#                     /dev/urandom, or a sparse 1.2 GB file: refused at
#                     once (read up to the first NUL), no hang
#   resume_special    --resume of the same: refused at once, no hang
#   resume_refused    a checkpoint of another train is refused before
#                     anything runs, and --save to it leaves it as it was
#   resume_nonfinite  Adam's second moment overflows float32 (saved as
#                     "inf"): the checkpoint resumes
#   save_unwritable   --save to a missing directory, to a directory, to a
#                     read-only directory (not as root): refused before
#                     anything runs
#   save_xfsz         a save past `ulimit -f` fails (no SIGXFSZ death): an
#                     error, exit 1, no temporary file left
#   repl_load         :load of a FIFO, of a file with a NUL byte, and of a
#                     file that loads itself: refused (no hang, no thousand
#                     levels of recursion); a UTF-8 BOM is skipped
#
# Every dlc run has a timeout: a hang is a failure, not a stuck test.
set -u
dlc=$1 peak_rss=$2 mode=$3
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail() { echo "FAIL: $*" >&2; [ -s err ] && sed 's/^/  stderr: /' err >&2; exit 1; }

# Runs dlc with ARGS (20 s at most, then SIGTERM, then SIGKILL: the old
# --resume /dev/zero ignored SIGTERM); $rc is its exit status.
run() {
  timeout -k 5 20 "$dlc" "$@" >out 2>err
  rc=$?
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "dlc $* hung (killed after 20 s)"
}

# The last run exited with $1 and its stderr holds $2.
expect() {
  [ "$rc" -eq "$1" ] || fail "exit status $rc, expected $1"
  [ -z "$2" ] || grep -qF -- "$2" err || fail "stderr does not say '$2'"
}

# The last run ran nothing: no output.
ran_nothing() {
  [ -s out ] && fail "the program ran: $(head -1 out)"
  return 0
}

# A small training, to resume and save.
model() {
  cat >m.dl <<EOF
x = linspace(0, 1, 100)
param w = fill(100, 0.5)
param b = 0.0
loss = sum((w * x + b - x)^2)
print("before")
train(steps = $1, optimizer = $2)
train(steps = 100, optimizer = sgd(lr = 0.01))
print("after {b}")
EOF
}

case $mode in
  csv_memory)
    seq 3000000 | awk '{ print ($1 % 1000) / 8 }' >one.csv
    seq 1500000 | awk '{ print $1 % 7 "," ($1 % 1000) / 8 }' >two.csv
    echo 'x = 1' >none.dl
    echo 'x = load_csv("one.csv", column = 0)' >one.dl
    echo 'm = load_csv("two.csv")' >two.dl
    "$peak_rss" base.kb "$dlc" check none.dl || fail "dlc check none.dl failed"
    for f in one two; do
      "$peak_rss" $f.kb "$dlc" check $f.dl 2>err || fail "dlc check $f.dl failed"
      # 3,000,000 cells of 8 bytes: 23,438 kB; a copy of the file per cell
      # (the old reader) took 8 times that.
      grown=$(($(cat $f.kb) - $(cat base.kb)))
      echo "$f.csv: $grown kB above a program that loads nothing"
      [ "$grown" -le 31000 ] || fail "$f.csv took $grown kB, more than 10 bytes a cell and 1.5 MB"
    done ;;
  csv_special)
    ln -s /dev/zero zero.csv
    ln -s /dev/urandom random.csv
    mkfifo fifo.csv
    mkdir dir.csv
    truncate -s 1200M sparse.csv
    for f in zero random fifo dir sparse; do
      echo "a = load_csv(\"$f.csv\", column = 0)" >$f.dl
      run check $f.dl
      case $f in
        zero | random) expect 1 "cannot open '$f.csv': it is a device, not a regular file" ;;
        fifo) expect 1 "cannot open 'fifo.csv': it is a FIFO, not a regular file" ;;
        dir) expect 1 "cannot open 'dir.csv': it is a directory" ;;
        sparse) expect 1 "sparse.csv: line 1: a NUL byte: this is not UTF-8 text" ;;
      esac
    done ;;
  program_special)
    ln -s /dev/zero zero.dl
    ln -s /dev/urandom random.dl
    truncate -s 1200M sparse.dl
    for f in zero.dl random.dl sparse.dl; do
      run run $f
      expect 1 "dlc: error: '$f' is not a text file (it contains a NUL byte)"
      ran_nothing
    done ;;
  resume_special)
    model 10 "adam(lr = 0.1)"
    mkfifo fifo.json
    mkdir dir.json
    truncate -s 1200M sparse.json
    printf '{"format": "dlc-checkpoint"\0}' >nul.json
    for f in /dev/zero /dev/urandom fifo.json dir.json sparse.json nul.json; do
      run run m.dl --resume $f --save ck.json
      case $f in
        /dev/*) expect 1 "cannot resume from '$f': it is a device, not a regular file" ;;
        fifo.json) expect 1 "cannot resume from 'fifo.json': it is a FIFO, not a regular file" ;;
        dir.json) expect 1 "cannot resume from 'dir.json': it is a directory" ;;
        sparse.json) expect 1 "it is 1258291200 bytes, more than a checkpoint of this program can be" ;;
        nul.json) expect 1 "cannot resume from 'nul.json': it holds a NUL byte" ;;
      esac
      ran_nothing
      [ -e ck.json ] && fail "--resume $f wrote the checkpoint"
    done ;;
  resume_refused)
    # The reproducer of issue 14, item 6: a long Adam train stopped by
    # SIGTERM, then resumed by a program whose train uses rmsprop.
    model 100000000 "adam(lr = 0.001)"
    timeout -k 5 60 "$dlc" run m.dl --save ck.json >out 2>err &
    pid=$!
    for ((i = 0; i < 500; i++)); do [ -s out ] && break; sleep 0.02; done
    sleep 0.3
    kill -TERM $pid
    wait $pid
    rc=$?
    expect 143 "training interrupted after"
    grep -q '"train":	1,' ck.json || fail "the checkpoint is not of train 1: $(head -c 300 ck.json)"
    cp ck.json saved.json
    sed -i 's/adam(lr = 0.001)/rmsprop(lr = 0.001)/' m.dl
    run run m.dl --resume ck.json --save ck.json
    expect 1 "cannot resume from 'ck.json': it was saved by another train: 100000000 steps of adam, and this one is 100000000 steps of rmsprop"
    ran_nothing
    cmp -s ck.json saved.json || fail "the refused checkpoint was overwritten"
    # Another number of steps, and train 1 gone: refused the same way.
    sed -i 's/rmsprop(lr = 0.001)/adam(lr = 0.001)/; s/steps = 100000000/steps = 1000/' m.dl
    run run m.dl --resume ck.json --save ck.json
    expect 1 "it was saved by another train: 100000000 steps of adam, and this one is 1000 steps of adam"
    ran_nothing
    cmp -s ck.json saved.json || fail "the refused checkpoint was overwritten" ;;
  resume_nonfinite)
    # The gradient of a is 1e20: Adam's second moment, its square, is inf
    # in float32, while the update (m / sqrt(v)) stays finite.
    cat >inf.dl <<'EOF'
param a = 1.0
param b = 0.0
loss = 1e20 * a + (b - 3)^2
train(steps = 100, optimizer = adam(lr = 0.1))
print("a = {a}, b = {b}")
EOF
    run run inf.dl --save ck.json
    expect 0 ""
    grep -q '"inf"' ck.json || fail "no \"inf\" in the checkpoint: $(cat ck.json)"
    cp out whole.out
    run run inf.dl --resume ck.json
    expect 0 ""
    cmp -s out whole.out || fail "the resumed run printed $(cat out), the whole one $(cat whole.out)" ;;
  save_unwritable)
    model 10 "adam(lr = 0.1)"
    mkdir dir.json
    run run m.dl --save missing/ck.json
    expect 1 "cannot save the checkpoint 'missing/ck.json': No such file or directory"
    ran_nothing
    run run m.dl --save dir.json
    expect 1 "cannot save the checkpoint 'dir.json': it is a directory"
    ran_nothing
    run run m.dl --save /dev/null
    expect 1 "cannot save the checkpoint '/dev/null': it is not a regular file"
    ran_nothing
    if [ "$(id -u)" -ne 0 ]; then                # root writes anywhere
      mkdir ro
      chmod 555 ro
      run run m.dl --save ro/ck.json
      expect 1 "cannot save the checkpoint 'ro/ck.json': Permission denied"
      ran_nothing
    fi ;;
  save_xfsz)
    # A checkpoint of about 90 kB, with the file size limit at 8 kB: the
    # saves fail with EFBIG, are reported, and training goes on.
    cat >big.dl <<'EOF'
x = linspace(0, 1, 3000)
param w = fill(3000, 0.5)
loss = sum((w * x - x)^2)
train(steps = 20, optimizer = adam(lr = 0.01))
print("after")
EOF
    (ulimit -f 8; timeout -k 5 20 "$dlc" run big.dl --save ck.json --save-every 5 >out 2>err)
    rc=$?
    expect 1 "cannot save the checkpoint 'ck.json': File too large"
    grep -qx after out || fail "what follows the train did not run"
    ls | grep -q 'ck.json' && fail "left behind: $(ls | grep ck.json)"
    [ "$(grep -c 'cannot save the checkpoint' err)" -eq 4 ] || fail "not one error per save" ;;
  repl_load)
    mkfifo fifo.dl
    printf 'x = 1\ny = \0\n' >nul.dl
    printf 'print("self")\n:load %s/self.dl\n' "$tmp" >self.dl
    printf '\xef\xbb\xbfz = 3\n' >bom.dl
    printf ':load fifo.dl\n:load nul.dl\n:load self.dl\n:load bom.dl\nprint(z)\n' >session
    timeout -k 5 20 "$dlc" repl <session >out 2>err
    rc=$?
    expect 1 "<stdin>:1:7: error: cannot open 'fifo.dl': it is a FIFO, not a regular file"
    expect 1 "<stdin>:2:7: error: 'nul.dl' is not a text file (its line 2 holds a NUL byte)"
    expect 1 "self.dl:2:7: error: '$tmp/self.dl' is being loaded already"
    [ "$(cat out)" = "$(printf 'self\n3')" ] || fail "the session printed $(cat out)" ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2 ;;
esac
exit 0
