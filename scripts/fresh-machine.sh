#!/usr/bin/env bash
# fresh-machine.sh — the README's two commands on a pristine Debian 12.
#
#   scripts/fresh-machine.sh [--worktree] [--sudo-user] [--seed-only]
#                            [--keep] [--rebuild-base]
#
# Builds once, and caches, a minimal Debian 12 root (`debootstrap
# --variant=minbase bookworm`, from the mirror in this machine's apt
# sources); then, on a fresh copy of it for each run (an overlay over the
# cached root, or a full copy where overlays do not mount), clones this
# repository's HEAD into /root/dlc and runs there, as root, exactly what
# README.md says:
#
#   scripts/dev.sh seed
#   scripts/dev.sh test
#
# and exits non-zero if either fails. This finds what a machine that has
# the packages installed by hand hides: a package dev.sh does not install,
# a test that needs a tool only this machine has. Before all that, it
# checks that README.md's "Packages:" list is the one dev.sh installs.
# Then, README's "Install": `scripts/dev.sh package` builds the .deb there,
# and in another fresh copy of the cached root `apt-get install ./dlc_*.deb`
# installs it; the installed dlc must name the commit (--version), run two
# installed examples (one reads its data file) and show `man dlc`.
#
#   --worktree      test the working tree instead of HEAD: HEAD's clone with
#                   the tracked files as they are now, and the untracked ones
#                   git does not ignore, copied over it (by default,
#                   uncommitted changes are NOT tested)
#   --sudo-user     the commands run as a normal user, `dev`, with
#                   passwordless sudo (sudo installed first, as an admin
#                   would), from /home/dev/dlc: README's "or with sudo"
#   --seed-only     only `scripts/dev.sh seed` (no test, no package)
#   --keep          leave the run's root (unmounted) for a look afterwards
#   --rebuild-base  debootstrap the cached root anew
#
# Needs root (it mounts and chroots). Installs debootstrap with apt-get if
# it is missing. The cache is DLC_FRESH_CACHE (default /var/cache/dlc-fresh):
# the root in bookworm-minbase-ARCH/, valid while bookworm-minbase-ARCH.done,
# written only once debootstrap has succeeded, names the same mirror and is
# younger than DLC_FRESH_MAX_AGE_DAYS (default 30); otherwise it is built
# anew. Each run's root is a directory run.XXXXXX beside it (an overlay over
# the cached root; a copy of it where overlays do not mount, or with
# DLC_FRESH_COPY=1), removed at the end, every mount in it undone first, on
# failure and Ctrl-C too.
set -euo pipefail

suite=bookworm variant=minbase
cache=${DLC_FRESH_CACHE:-/var/cache/dlc-fresh}
max_age_days=${DLC_FRESH_MAX_AGE_DAYS:-30}
worktree=0 sudo_user=0 seed_only=0 keep=0 rebuild=0
for a in "$@"; do
  case $a in
    --worktree) worktree=1 ;;
    --sudo-user) sudo_user=1 ;;
    --seed-only) seed_only=1 ;;
    --keep) keep=1 ;;
    --rebuild-base) rebuild=1 ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "usage: scripts/fresh-machine.sh [--worktree] [--sudo-user] [--seed-only] [--keep] [--rebuild-base]" >&2; exit 2 ;;
  esac
done

start=$SECONDS step_start=$SECONDS
say() { printf '==> fresh-machine [%3ds] %s\n' "$((SECONDS - start))" "$*"; }
step() { step_start=$SECONDS; say "$*"; }
done_step() { say "  ... ${1:-done} in $((SECONDS - step_start))s"; }
die() { echo "fresh-machine: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it mounts and chroots): sudo scripts/fresh-machine.sh"
case $cache in /*) ;; *) die "DLC_FRESH_CACHE must be an absolute path" ;; esac
case $cache in *[[:space:]]*) die "DLC_FRESH_CACHE must have no spaces" ;; esac
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
git -C "$top" rev-parse --git-dir >/dev/null 2>&1 || die "$top is not a git repository"
rev=$(git -C "$top" rev-parse HEAD)

# README.md's "Packages:" paragraph names what dev.sh installs, in its order.
readme_packages=$(awk '/^Packages:/ { p = 1 } p && /^$/ { exit } p' "$top/README.md" | tr '\n' ' ' |
  sed -e 's/([^)]*)//g' -e 's/^Packages://' | tr ',.' '  ' | awk '{ $1 = $1; print }')
devsh_packages=$(sed -n 's/^packages=(\(.*\))$/\1/p' "$top/scripts/dev.sh" | awk '{ $1 = $1; print }')
[ "$readme_packages" = "$devsh_packages" ] ||
  die "README.md's Packages: ($readme_packages) is not scripts/dev.sh's list ($devsh_packages)"
arch=$(dpkg --print-architecture)
key=$suite-$variant-$arch
base=$cache/$key
mkdir -p "$cache"

# ---- mounts and cleanup

# The mount points at DIR or under it, deepest first.
mounts_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
unmount_under() {
  local m try
  for try in 1 2 3; do
    [ -n "$(mounts_under "$1")" ] || return 0
    for m in $(mounts_under "$1"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
  [ -z "$(mounts_under "$1")" ]
}
# The processes whose root directory is DIR (left over in the chroot).
kill_inside() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case $r in "$1"|"$1"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
}
# Remove DIR once nothing is mounted in it (never across a mount).
remove_dir() {
  if unmount_under "$1"; then
    rm -rf --one-file-system "$1"
  else
    echo "fresh-machine: could not unmount everything under $1; left it:" >&2
    mounts_under "$1" >&2
    return 1
  fi
}

# Runs COMMAND in a process group of its own, and waits: a signal to this
# script then stops the wait at once, and cleanup ends the whole group.
# With --log FILE first, its output goes there (a redirection of the call
# would take the trap's messages too).
job=
in_group() {
  if [ "$1" = --log ]; then
    local log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 &
  else
    setsid "$@" &
  fi
  job=$!
  local rc=0
  wait "$job" || rc=$?
  job=
  return $rc
}

run= building=
cleanup() {
  local rc=$?
  # No second Ctrl-C, nor a closed pipe (`| tee` ended by the Ctrl-C),
  # stops the cleanup halfway.
  trap '' INT TERM PIPE
  trap - EXIT
  set +e
  [ -n "$job" ] && { kill -KILL -- "-$job"; wait "$job"; } 2>/dev/null
  if [ -n "$building" ]; then
    kill_inside "$base.tmp"
    remove_dir "$base.tmp" || rc=1
  fi
  if [ -n "$run" ] && [ -d "$run" ]; then
    for r in "$run"/root "$run"/deb-root; do
      kill_inside "$r"
      sleep 0.2
      kill_inside "$r"
    done
    if [ "$keep" = 1 ]; then
      unmount_under "$run" || rc=1
      if [ -d "$run/upper" ]; then
        say "kept $run: the root's changes in upper/, over $base; to look:"
        say "  mount -t overlay overlay -o lowerdir=$base,upperdir=$run/upper,workdir=$run/work $run/root"
      else
        say "kept the root in $run/root"
      fi
    else
      remove_dir "$run" || rc=1
    fi
  fi
  [ $rc -eq 0 ] && say "passed in $((SECONDS - start))s" || say "FAILED (exit $rc) after $((SECONDS - start))s"
  exit $rc
}
trap cleanup EXIT
trap 'echo; say "interrupted"; exit 130' INT TERM
trap 'exit 141' PIPE

# Runs of earlier invocations that were killed outright: their mounts and
# files, unless their process still runs.
for d in "$cache"/run.*; do
  [ -d "$d" ] || continue
  p=$(cat "$d/pid" 2>/dev/null || true)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && continue
  [ -z "$p" ] && [ -n "$(find "$d" -maxdepth 0 -mmin -5)" ] && continue   # just made
  say "removing $d, left by an earlier run"
  remove_dir "$d" || true
done

# ---- the cached base

# The Debian mirror this machine's apt uses for $suite (DLC_FRESH_MIRROR overrides).
mirror=${DLC_FRESH_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk -v s="$suite" '
    /^[[:space:]]*$/ { if (uri != "" && ok && first == "") first = uri; uri = ""; ok = 0; next }
    tolower($1) == "uris:" { uri = $2 }
    tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
    END { if (uri != "" && ok && first == "") first = uri; print first }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk -v s="$suite" '$1 == "deb" { sub(/^deb +(\[[^]]*\] +)?/, ""); if ($2 == s) { print $1; exit } }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

base_valid() {
  [ -d "$base" ] && [ -f "$base.done" ] || { say "no complete cached root in $base"; return 1; }
  grep -qx "mirror=$mirror" "$base.done" || { say "cached root was built from another mirror"; return 1; }
  [ -z "$(find "$base.done" -mtime +"$max_age_days")" ] || { say "cached root is older than $max_age_days days"; return 1; }
}

# A shared lock while the base is in use; exclusive while it is (re)built.
exec 9>"$cache/$key.lock"
flock -x 9
if [ "$rebuild" = 1 ] || ! base_valid; then
  if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
    step "installing debootstrap (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    done_step
  fi
  step "building the cached root: debootstrap --variant=$variant $suite $base ($mirror)"
  rm -f "$base.done"
  remove_dir "$base.tmp" 2>/dev/null || true
  remove_dir "$base" || die "cannot remove the old $base"
  building=1
  : >"$cache/$key.log"
  if ! in_group --log "$cache/$key.log" env PATH="$PATH:/usr/sbin:/sbin" debootstrap --variant="$variant" \
      --arch="$arch" "$suite" "$base.tmp" "$mirror"; then
    tail -20 "$cache/$key.log" >&2
    die "debootstrap failed (log: $cache/$key.log)"
  fi
  unmount_under "$base.tmp" || die "cannot unmount what debootstrap left mounted in $base.tmp"
  mv "$base.tmp" "$base"
  building=
  printf 'mirror=%s\nbuilt=%s\n' "$mirror" "$(date -u +%FT%TZ)" >"$base.done.tmp"
  mv "$base.done.tmp" "$base.done"
  done_step "built ($(du -sh "$base" | cut -f1))"
else
  say "cached root: $base ($(sed -n 's/^built=//p' "$base.done"))"
fi
flock -s 9

# ---- this run's root

run=$(mktemp -d "$cache/run.XXXXXX")
echo $$ >"$run/pid"

# Makes a fresh root from the cached one, $run/${1}root (the README's
# commands run in $run/root, the package is installed in $run/deb-root),
# ready for chroot with this machine's network settings; sets root.
make_root() {
  root=$run/${1}root
  mkdir "$root" "$run/${1}upper" "$run/${1}work"
  step "making a fresh root from the cached one${1:+ (for the package)}"
  if [ "${DLC_FRESH_COPY:-0}" != 1 ] &&
     mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/${1}upper,workdir=$run/${1}work" "$root" 2>/dev/null; then
    done_step "overlay"
  else
    rmdir "$run/${1}upper" "$run/${1}work"
    cp -a "$base/." "$root/"
    done_step "copied"
  fi

  # What makes apt reach the network here: the DNS server, the sources
  # (where this machine is Debian 12 too: updates and security as on an
  # installed one) and the proxy and date-check settings of apt.
  cp -L /etc/resolv.conf "$root/etc/resolv.conf.new" && mv "$root/etc/resolv.conf.new" "$root/etc/resolv.conf"
  # The host name (the chroot has this machine's) known, as the installer
  # does it: else sudo says "unable to resolve host".
  hostname >"$root/etc/hostname"
  [ -e "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
    "$(hostname)" >"$root/etc/hosts"
  if grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
    : >"$root/etc/apt/sources.list"
  fi
  for k in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date; do
    v=$(apt-config dump --no-empty "$k" 2>/dev/null | sed -n "s/^$k \"\(.*\)\";\$/\1/p" | head -1)
    [ -n "$v" ] && printf '%s "%s";\n' "$k" "$v"
  done >"$root/etc/apt/apt.conf.d/00fresh-machine-host"
  [ -s "$root/etc/apt/apt.conf.d/00fresh-machine-host" ] || rm "$root/etc/apt/apt.conf.d/00fresh-machine-host"

  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --bind /sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  mount -t tmpfs tmpfs "$root/dev/shm"
}
make_root ""

# Runs COMMAND in the root with a login's environment.
in_root() {
  in_group chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1" </dev/null
}

if [ "$sudo_user" = 1 ]; then
  step "adding user dev with passwordless sudo (apt-get install sudo)"
  in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq --no-install-recommends sudo >/dev/null &&
    useradd -m -s /bin/bash dev && echo "dev ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/dev && chmod 440 /etc/sudoers.d/dev'
  done_step
  home=/home/dev
else
  home=/root
fi

# ---- the code under test

step "cloning $(git -C "$top" rev-parse --short HEAD) ($(git -C "$top" log -1 --format=%s HEAD | cut -c1-60)) into $home/dlc"
git clone -q --no-hardlinks --no-checkout "$top" "$root$home/dlc"
git -C "$root$home/dlc" -c advice.detachedHead=false checkout -q --detach "$rev"
if [ "$worktree" = 1 ]; then
  (cd "$top" && git ls-files -z -co --exclude-standard --deduplicate |
     while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$root$home/dlc"
  (cd "$top" && git ls-files -z --deleted) | (cd "$root$home/dlc" && xargs -0 -r rm -f --)
  n=$(git -C "$root$home/dlc" status --porcelain | wc -l)
  done_step "done, with the working tree (files that differ from HEAD: $n)"
else
  done_step
  if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    say "note: the working tree has uncommitted changes; they are not tested (--worktree tests them)"
  fi
fi
[ "$sudo_user" = 1 ] && in_root "chown -R dev:dev $home/dlc"

# ---- the README's commands

# Then README's "Install": the package, installed below.
commands=(seed test package)
[ "$seed_only" = 1 ] && commands=(seed)
for c in "${commands[@]}"; do
  if [ "$sudo_user" = 1 ]; then
    step "as user dev, in $home/dlc: scripts/dev.sh $c"
    in_root "runuser -l dev -c 'cd ~/dlc && scripts/dev.sh $c'" || { rc=$?; say "scripts/dev.sh $c FAILED (exit $rc)"; exit $rc; }
  else
    step "as root, in $home/dlc: scripts/dev.sh $c"
    in_root "cd $home/dlc && scripts/dev.sh $c" || { rc=$?; say "scripts/dev.sh $c FAILED (exit $rc)"; exit $rc; }
  fi
  done_step "scripts/dev.sh $c passed"
done

# ---- the package, installed as a user would

[ "$seed_only" = 1 ] && exit 0
# README.md's "Install": `scripts/dev.sh package` built the .deb (the
# packaging tools installed first); now, in ANOTHER fresh root, apt
# installs it with what it depends on, and the installed dlc names this
# commit, runs an installed example, and has its man page (man-db
# installed for the look, as a user would have it).
debs=("$root$home"/dlc/build/dlc_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || die "scripts/dev.sh package made no single build/dlc_*.deb"
deb=$(basename "${debs[0]}")
say "  ... built $deb ($(du -h "${debs[0]}" | cut -f1))"
cp "${debs[0]}" "$run/$deb"
make_root deb-
cp "$run/$deb" "$root/root/$deb"
step "in a pristine root: apt-get install ./$deb"
in_root "cd /root && apt-get update -qq && DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq ./$deb >/dev/null &&
  dpkg-query -W -f='  Depends: \${Depends}\n  Recommends: \${Recommends}\n' dlc" || { rc=$?; say "installing $deb FAILED (exit $rc)"; exit $rc; }
done_step
step "the installed dlc: --version, an installed example, man dlc"
commit=$(git -C "$top" rev-parse --short=7 "$rev")
in_root "set -e -o pipefail
  cd /tmp
  echo '\$ dlc --version'; dlc --version | tee version
  grep -q '(commit $commit' version || { echo 'dlc --version does not name commit $commit'; exit 1; }
  echo '\$ dlc run /usr/share/doc/dlc/examples/legendre.dl | tail -2'
  dlc run /usr/share/doc/dlc/examples/legendre.dl | tail -2
  echo '\$ dlc run /usr/share/doc/dlc/examples/csv_regression.dl | tail -1   # reads examples/data/houses.csv'
  dlc run /usr/share/doc/dlc/examples/csv_regression.dl | tail -1
  test -f /usr/share/bash-completion/completions/dlc
  DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq --no-install-recommends man-db >/dev/null
  echo '\$ man dlc | head -12'
  MANPAGER=cat MANWIDTH=80 man dlc >man.out 2>&1
  head -12 man.out
  grep -q 'dlc - a compiler for differentiable models' man.out" ||
  { rc=$?; say "the installed dlc FAILED (exit $rc)"; exit $rc; }
done_step "the package installs and works"
