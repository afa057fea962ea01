#!/usr/bin/env bash
# cache_test.sh — the compile cache (src/cache.c): a hit prints what a
# compile prints, and says it came from the cache; a damaged entry is
# found and replaced; a changed program or option misses; runs at once do
# not corrupt it; the size bound evicts the least recently used; --no-cache
# and DLC_CACHE=0 keep nothing; `dlc cache info|clear`.
#
#   cache_test.sh DLC EXAMPLES_DIR
set -u
dlc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export DLC_CACHE_DIR=$tmp/cache
unset DLC_CACHE DLC_CACHE_SIZE
seed=$examples/legendre.dl
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
entries() { find "$DLC_CACHE_DIR" -name '*.o' 2>/dev/null | wc -l; }
# run NAME ARGS...: stdout to $tmp/NAME.out, the --time line to $tmp/NAME.time
run() {
  local name=$1; shift
  "$dlc" run --time "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || fail "dlc run $* exited $?"
  grep '^time:' "$tmp/$name.err" >"$tmp/$name.time"
}

run cold "$seed"
grep -q '0 of 1 train from the cache' "$tmp/cold.time" || fail "a first run used the cache: $(cat "$tmp/cold.time")"
[ "$(entries)" -eq 1 ] || fail "a first run left $(entries) entries, not 1"
run warm "$seed"
grep -q '1 of 1 train from the cache' "$tmp/warm.time" || fail "a second run did not hit: $(cat "$tmp/warm.time")"
cmp -s "$tmp/cold.out" "$tmp/warm.out" || fail "a hit printed other numbers"

# A damaged entry (truncated, then overwritten) is compiled again and replaced.
entry=$(find "$DLC_CACHE_DIR" -name '*.o')
head -c 100 "$entry" >"$tmp/short" && cp "$tmp/short" "$entry"
run truncated "$seed"
grep -q '0 of 1 train from the cache' "$tmp/truncated.time" || fail "a truncated entry was used"
cmp -s "$tmp/cold.out" "$tmp/truncated.out" || fail "after a truncated entry, other numbers"
printf 'X' | dd of="$entry" bs=1 seek=200 conv=notrunc status=none
run flipped "$seed"
grep -q '0 of 1 train from the cache' "$tmp/flipped.time" || fail "a damaged entry was used"
run replaced "$seed"
grep -q '1 of 1 train from the cache' "$tmp/replaced.time" || fail "a damaged entry was not replaced"
cmp -s "$tmp/cold.out" "$tmp/replaced.out" || fail "a replaced entry printed other numbers"

# A changed program, precision or level misses.
sed 's/lr = 5e-6/lr = 4e-6/' "$seed" >"$tmp/changed.dl"
run changed "$tmp/changed.dl"
grep -q '0 of 1' "$tmp/changed.time" || fail "a changed program hit"
run f64 "$seed" --f64
grep -q '0 of 1' "$tmp/f64.time" || fail "--f64 hit the f32 entry"
run o1 "$seed" -O1
grep -q '0 of 1' "$tmp/o1.time" || fail "-O1 hit the -O2 entry"
[ "$(entries)" -eq 4 ] || fail "4 programs left $(entries) entries"

# Runs at once into an empty cache: each prints the same, and the entry is whole.
rm -rf "$DLC_CACHE_DIR"
for k in 1 2 3 4; do "$dlc" run "$seed" >"$tmp/par$k.out" 2>/dev/null & done
wait
for k in 1 2 3 4; do cmp -s "$tmp/cold.out" "$tmp/par$k.out" || fail "concurrent run $k printed other numbers"; done
run after "$seed"
grep -q '1 of 1' "$tmp/after.time" || fail "after concurrent runs, no good entry: $(cat "$tmp/after.time")"
[ -z "$(find "$DLC_CACHE_DIR" -name 'tmp.*')" ] || fail "temporary files left in the cache"

# The size bound keeps the most recently used entries.
size=$(stat -c %s "$(find "$DLC_CACHE_DIR" -name '*.o')")
export DLC_CACHE_SIZE=$((size * 2 + size / 2))
for lr in 1e-6 2e-6 3e-6; do
  sed "s/lr = 5e-6/lr = $lr/" "$seed" >"$tmp/lr$lr.dl"
  "$dlc" run "$tmp/lr$lr.dl" >/dev/null 2>&1
  sleep 0.05                                     # distinct times of use
done
[ "$(entries)" -eq 2 ] || fail "with room for 2 entries, $(entries) are kept"
run newest "$tmp/lr3e-6.dl"
grep -q '1 of 1' "$tmp/newest.time" || fail "the newest entry was evicted"
run oldest "$seed"
grep -q '0 of 1' "$tmp/oldest.time" || fail "the least recently used entry was kept"
unset DLC_CACHE_SIZE

# Off: nothing read, nothing written.
rm -rf "$DLC_CACHE_DIR"
run nocache "$seed" --no-cache
DLC_CACHE=0 run envoff "$seed"
[ "$(entries)" -eq 0 ] || fail "--no-cache or DLC_CACHE=0 wrote entries"
! grep -q "the cache" "$tmp/nocache.time" "$tmp/envoff.time" || fail "with the cache off, --time speaks of it"

# dlc cache info | clear
run again "$seed"
"$dlc" cache info | grep -q '^entries: 1$' || fail "cache info: $("$dlc" cache info)"
"$dlc" cache clear | grep -q '^removed 1 entry' || fail "cache clear did not say it removed 1"
[ "$(entries)" -eq 0 ] || fail "cache clear left $(entries) entries"
"$dlc" cache frob >/dev/null 2>&1; [ $? -eq 2 ] || fail "cache frob is no usage error"

[ "$fails" -eq 0 ] && echo "cache: all checks passed"
exit $((fails > 0))
