#!/usr/bin/env bash
# install_test.sh — dlc installed as a tool (README.md, "Install"), and the
# files that describe it kept in step with the compiler.
#
#   install_test.sh SRC BUILD MODE
#
#   names     every command, flag, emit WHAT and --gpu-arch value of
#             src/main.c's usage is in the man page (docs/dlc.1) and the
#             bash completion (completion/dlc.bash), and the man page's
#             version is src/dlc.h's; every keyword of grammar/lexer.l and
#             every built-in of src/builtins.c is in the Vim syntax and the
#             TextMate grammar, which is valid JSON of scope source.dl;
#             the completion completes commands, flags, values and .dl files
#   tree      `cmake --install` into a new prefix puts dlc, its man page,
#             its completion and the examples with their data where the
#             README says; the installed dlc names its commit and runs an
#             installed example that reads a CSV, from another directory,
#             printing what its ref/ output says
#
# Uses only bash, coreutils, grep, sed and cmake (its string(JSON) checks
# the JSON), as the other tests do: none of them needs more than dev.sh
# installs.
set -u
src=$1 build=$2 mode=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# The text of main.c's usage string, and the words of a C string list.
usage=$(sed -n '/^static const char usage\[\] =/,/;$/p' "$src/src/main.c")
c_list() { awk -v re="$1" '$0 ~ re { p = 1 } p { print } p && /;/ { exit }' "$2" | grep -o '"[^"]*"' | tr -d '"' | tr ', ' '\n\n' | grep .; }
# WORD stands alone in FILE (--save is not found in --save-every); the
# man page's \- reads as -.
has_word() { sed 's/\\-/-/g' "$2" | grep -Eq -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)"; }

names() {
  local man=$src/docs/dlc.1 comp=$src/completion/dlc.bash
  local vim=$src/editors/vim/syntax/dl.vim tm=$src/editors/textmate/dl.tmLanguage.json w
  local flags commands kinds archs keywords builtins
  flags=$(grep -oE -- '(--[a-z0-9-]+|-O[0-3]|-h)' <<<"$usage" | sort -u)
  commands=$(grep -oE 'dlc [a-z]+' <<<"$usage" | cut -d' ' -f2 | sort -u)
  kinds=$(c_list 'emit_kinds\[\] =' "$src/src/main.c")
  archs=$(sed -n 's/^#define GPU_ARCHS "\(.*\)"$/\1/p' "$src/src/dlc.h" | tr -d ,)
  [ -n "$flags" ] && [ -n "$commands" ] && [ "$(wc -w <<<"$kinds")" -ge 7 ] && [ -n "$archs" ] ||
    fail "could not read the usage, emit_kinds or GPU_ARCHS (did their form change?)"
  for w in $flags $commands $kinds $archs; do
    has_word "$w" "$man" || fail "'$w' (src/main.c's usage) is not in docs/dlc.1"
    [ "$w" = -h ] && continue   # the completion offers --help
    has_word "$w" "$comp" || fail "'$w' (src/main.c's usage) is not in completion/dlc.bash"
  done
  local version
  version=$(sed -n 's/^#define DLC_VERSION "\(.*\)"$/\1/p' "$src/src/dlc.h")
  grep -q "^\.TH DLC 1 .*\"dlc $version\"" "$man" || fail "docs/dlc.1's .TH does not name dlc $version"

  keywords=$(sed -n 's/^"\([a-z]*\)" *return [A-Z]*;$/\1/p' "$src/grammar/lexer.l")
  builtins=$(sed -n 's/^  {"\([a-z_0-9]*\)", B_.*/\1/p' "$src/src/builtins.c")
  builtins+=" $(c_list 'constants\[\] =' "$src/src/builtins.c")"
  [ "$(wc -w <<<"$keywords")" -ge 4 ] && [ "$(wc -w <<<"$builtins")" -ge 40 ] ||
    fail "could not read the keywords of grammar/lexer.l or the built-ins of src/builtins.c"
  for w in $keywords $builtins; do
    grep -Eq "^syn keyword dl[A-Za-z]+ (.* )?$w( |\$)" "$vim" || fail "'$w' is not in editors/vim/syntax/dl.vim"
    grep -Eq "[(|]$w[|)]" "$tm" || fail "'$w' is not in editors/textmate/dl.tmLanguage.json"
  done
  # The JSON is valid, and names its scope.
  cat >"$tmp/json.cmake" <<'CMAKE'
file(READ "${FILE}" text)
string(JSON scope ERROR_VARIABLE err GET "${text}" scopeName)
if(err OR NOT scope STREQUAL "source.dl")
  message(FATAL_ERROR "${FILE}: not JSON with scopeName source.dl: ${err}")
endif()
CMAKE
  for f in "$tm" "$src/editors/textmate/package.json" "$src/editors/textmate/language-configuration.json"; do
    case $f in
      *tmLanguage*) cmake -DFILE="$f" -P "$tmp/json.cmake" || fail "$f is not a valid grammar" ;;
      *) printf 'file(READ "%s" t)\nstring(JSON n ERROR_VARIABLE e LENGTH "${t}")\nif(e)\nmessage(FATAL_ERROR "%s: ${e}")\nendif()\n' \
           "$f" "$f" >"$tmp/valid.cmake"
         cmake -P "$tmp/valid.cmake" || fail "$f is not valid JSON" ;;
    esac
  done

  # The completion, as bash calls it (without the bash-completion package).
  mkdir "$tmp/d" && touch "$tmp/d/model.dl" "$tmp/d/notes.txt" "$tmp/d/params.json"
  complete_to() {
    local expect=$1 got
    shift
    got=$(cd "$tmp/d" && bash -c 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _dlc
                                    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' "$comp" "$@")
    [ "$got" = "$expect " ] || fail "completion of '$*': '$got', expected '$expect'"
  }
  complete_to "repl run" dlc r
  complete_to "model.dl" dlc run ""
  complete_to "--save --save-every" dlc run model.dl --save
  complete_to "cpu gpu" dlc run model.dl --target ""
  complete_to "sm_90 sm_90a" dlc run model.dl --gpu-arch sm_9
  complete_to "params.json" dlc run model.dl --resume ""
  complete_to "grad" dlc emit g
  complete_to "model.dl" dlc emit grad ""
  complete_to "--f64" dlc check model.dl --
}

tree() {
  local prefix=$tmp/prefix out
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install failed"; return; }
  for f in bin/dlc share/man/man1/dlc.1 share/bash-completion/completions/dlc \
           share/doc/dlc/README.md share/doc/dlc/language.md \
           share/doc/dlc/examples/legendre.dl share/doc/dlc/examples/data/houses.csv \
           share/doc/dlc/editors/vim/syntax/dl.vim share/doc/dlc/editors/textmate/dl.tmLanguage.json; do
    [ -f "$prefix/$f" ] || fail "cmake --install did not install $f"
  done
  [ -x "$prefix/bin/dlc" ] || { fail "no installed dlc to run"; return; }
  out=$("$prefix/bin/dlc" --version)
  grep -Eqx 'dlc [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7}(-dirty)?|unknown)\)' <<<"$out" ||
    fail "dlc --version says '$out'"
  # From another directory, against its reference output (e2e_runner):
  # the example's data and ref/ are found beside it.
  (cd "$tmp" && "$build/e2e_runner" "$prefix/bin/dlc" "$prefix/share/doc/dlc/examples/csv_regression.dl") ||
    fail "the installed examples/csv_regression.dl does not run as its ref/ says"
}

case $mode in
  names) names ;;
  tree) tree ;;
  *) echo "usage: install_test.sh SRC BUILD names|tree" >&2; exit 2 ;;
esac
exit $failed
