#!/usr/bin/env bash
# dev.sh — set up, build, and run dlc on a fresh Debian 12 machine.
#
#   scripts/dev.sh setup   install missing packages (apt-get, as root) and build
#   scripts/dev.sh seed    setup, then run the seed example (examples/legendre.dl)
#   scripts/dev.sh test    setup, then run every test (ctest)
#   scripts/dev.sh sanitize  the same tests, built with ASan + UBSan (into
#                          build-sanitize/); CI runs it after `test`
#   scripts/dev.sh tsan    every training program on 1, 2, 3 and 7 threads
#                          (the threads_ tests) built with ThreadSanitizer,
#                          the compiled training code included (into
#                          build-tsan/): a race fails it; CI runs it
#   scripts/dev.sh package setup, then build the Debian package
#                          (build/dlc_VERSION_ARCH.deb, cpack), installing
#                          the packaging tools first (package_tools below)
#   scripts/dev.sh valgrind [REGEX]  the tests (those matching REGEX) with
#                          every dlc process under valgrind: no memory
#                          error, no leak; slow (about 20 s a run). The two
#                          tests that time a terminal or measure memory are
#                          left out: valgrind's own slowness and memory
#                          would fail them
#
# BUILD_DIR (default: build) and BUILD_TYPE (default: RelWithDebInfo) may be
# set in the environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# The statically linked LLVM needs the C++ standard library (g++ brings
# its development files, libstdc++-12-dev) and zlib and zstd (it compresses
# with them). README.md lists these packages too: keep the two the same.
# scripts/fresh-machine.sh checks that the two agree and that they are
# enough on a pristine Debian 12.
packages=(gcc g++ make cmake pkg-config flex bison check llvm-19-dev zlib1g-dev libzstd-dev libedit-dev libcjson-dev libcairo2-dev libopenblas0)
# Only `package` needs these: CPack's Debian generator finds the package's
# Depends with dpkg-shlibdeps (dpkg-dev), and recognizes executables with file.
package_tools=(dpkg-dev file)

# Installs the packages named (default: the packages above) that are missing.
install_packages() {
  local missing=() want=("$@")
  [ ${#want[@]} -gt 0 ] || want=("${packages[@]}")
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "dev.sh: installing ${missing[*]} with apt-get (a few minutes on a new machine)" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "dev.sh: run this as root, or install sudo: apt-get needs root" >&2; exit 2; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  # Through env: sudo would drop the variables set before it.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
  cmake --build "$build" -j "$(nproc)"
}

case "${1:-}" in
  setup) install_packages; build ;;
  seed) install_packages; build; "$build/dlc" run "$root/examples/legendre.dl" ;;
  test) install_packages; build; ctest --test-dir "$build" --output-on-failure -j "$(nproc)" ;;
  package)
    install_packages "${packages[@]}" "${package_tools[@]}"
    build
    (cd "$build" && cpack -G DEB >/dev/null) && ls "$build"/dlc_*.deb ;;
  sanitize)
    install_packages
    build=${BUILD_DIR:-$root/build-sanitize}
    build -DDLC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 DLC_THREADS_REPEATS=1 \
      ctest --test-dir "$build" --output-on-failure -j "$(nproc)" ;;
  tsan)
    install_packages
    build=${BUILD_DIR:-$root/build-tsan}
    build -DDLC_TSAN=ON
    DLC_THREADS_REPEATS=1 TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
      ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -R '^threads_' ;;
  valgrind)
    install_packages
    command -v valgrind >/dev/null || { echo "dev.sh: valgrind is not installed" >&2; exit 2; }
    build
    ctest --test-dir "$build" -T memcheck ${2:+-R "$2"} -E "repl_pty|repl_memory" -j "$(nproc)" \
      --overwrite MemoryCheckCommand="$(command -v valgrind)" \
      --overwrite MemoryCheckSuppressionFile="$root/tests/valgrind.supp" \
      --overwrite MemoryCheckCommandOptions="--trace-children=yes --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9" ;;
  *) echo "usage: scripts/dev.sh setup|seed|test|package|sanitize|tsan|valgrind [REGEX]" >&2; exit 2 ;;
esac
