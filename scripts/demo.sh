#!/usr/bin/env bash
# Set-up and demo in one: installs packages, builds (Release), runs the usual command.
#   scripts/demo.sh                      # mpirun -np 4 tp_mlp --tp-size 4 --hidden-size 256
#   scripts/demo.sh 2 --hidden-size 1024 # 2 ranks, TP 2, any extra flags
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-4}"
[[ $ranks =~ ^[1-9][0-9]{0,3}$ ]] || {
  echo "scripts/demo.sh: the first argument is the rank count (1..9999), not '$ranks'" >&2
  exit 64
}
[ $# -gt 0 ] && shift
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(--hidden-size 256)

. scripts/env.sh
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
oversubscribe=()
[ "$ranks" -le "$(nproc)" ] || oversubscribe=(--oversubscribe)  # more ranks than cores
exec mpirun "${oversubscribe[@]}" -np "$ranks" build/tp_mlp --tp-size "$ranks" "${extra[@]}"
