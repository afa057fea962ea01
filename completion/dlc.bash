# bash completion for dlc — installed as share/bash-completion/completions/dlc.
#
# Completes the command, then its flags (each command's own, as main.c's
# usage lists them: tests/install_test.sh checks that every flag there is
# here), the values of the flags that take a fixed set, emit's WHAT, and
# .dl files for the file argument (.json for --save and --resume).

_dlc() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion || return
  else
    cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
  fi

  if [ "$cword" -eq 1 ]; then
    COMPREPLY=($(compgen -W "run check emit repl cache --help --version" -- "$cur"))
    return
  fi

  local cmd=${words[1]} opts
  case $cmd in
    run) opts="--f64 -O0 -O1 -O2 -O3 --time --target --gpu-arch --threads --save --save-every --resume --nan-check --log --plot-loss --no-progress --no-cache" ;;
    check) opts="--f64" ;;
    emit) opts="--f64 -O0 -O1 -O2 -O3 --gpu-arch" ;;
    repl) opts="--f64 -O0 -O1 -O2 -O3 --threads --no-progress --no-cache" ;;
    cache) [ "$cword" -eq 2 ] && COMPREPLY=($(compgen -W "info clear" -- "$cur")); return ;;
    *) return ;;
  esac

  case $prev in
    --target) COMPREPLY=($(compgen -W "cpu gpu" -- "$cur")); return ;;
    --gpu-arch) COMPREPLY=($(compgen -W "sm_80 sm_86 sm_87 sm_89 sm_90 sm_90a" -- "$cur")); return ;;
    --threads|--save-every) COMPREPLY=(); return ;;
    --save|--resume)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -- "$cur"))
      return ;;
    --log)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -X '!*.csv' -- "$cur") $(compgen -f -X '!*.jsonl' -- "$cur") $(compgen -d -- "$cur"))
      return ;;
    --plot-loss)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -X '!*.png' -- "$cur") $(compgen -f -X '!*.svg' -- "$cur") \
                 $(compgen -f -X '!*.pdf' -- "$cur") $(compgen -d -- "$cur"))
      return ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  # emit's WHAT comes before its file.
  if [ "$cmd" = emit ]; then
    local i n=0
    for ((i = 2; i < cword; i++)); do
      case ${words[i]} in
        --gpu-arch|--target|--threads|--save|--save-every|--resume|--log|--plot-loss) i=$((i + 1)) ;;
        -*) ;;
        *) n=$((n + 1)) ;;
      esac
    done
    if [ "$n" -eq 0 ]; then
      COMPREPLY=($(compgen -W "tokens ast ir grad llvm asm ptx" -- "$cur"))
      return
    fi
  fi
  [ "$cmd" = repl ] && return
  compopt -o filenames 2>/dev/null
  COMPREPLY=($(compgen -f -X '!*.dl' -- "$cur") $(compgen -d -- "$cur"))
}
complete -F _dlc dlc
