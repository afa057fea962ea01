#!/usr/bin/env bash
# doc-pictures.sh — regenerates the pictures README.md and docs/language.md
# show, from the seed (examples/legendre.dl): its fit, which its plot
# statement draws, and its training curve (--plot-loss).
#
#   scripts/doc-pictures.sh [DLC]   (default: build/dlc)
#
# They go to docs/pictures/, to be committed with the change that altered
# them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dlc=$(realpath "${1:-$root/build/dlc}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The plot statement writes into the current directory.
(cd "$tmp" && "$dlc" run "$root/examples/legendre.dl" --plot-loss legendre-loss.png >/dev/null)
mkdir -p "$root/docs/pictures"
cp "$tmp/legendre.png" "$root/docs/pictures/legendre-fit.png"
cp "$tmp/legendre-loss.png" "$root/docs/pictures/legendre-loss.png"
ls -l "$root/docs/pictures"
