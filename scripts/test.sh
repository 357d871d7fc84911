#!/usr/bin/env bash
# Set-up and tests in one: installs packages, then for each build flavour (CMakePresets.json)
# configures, builds and runs its tests under ctest, in parallel on every core (each test
# reserves the cores it uses: an MPI case one per rank).
#   scripts/test.sh                        # release: every test of the default build
#   scripts/test.sh eigen asan mpich       # the other flavours, each what it exists for
# .ci/run runs both lines. README: Tests says which preset checks what.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release)
known=$(cmake --list-presets | sed -n 's/^ *"\([^"]*\)".*/\1/p' | tr '\n' ' ')
for preset in "${presets[@]}"; do
  case " $known" in
    *" $preset "*) ;;
    *) echo "scripts/test.sh: no preset '$preset': choose from ${known% }" >&2; exit 64 ;;
  esac
done
jobs=$(nproc)
for preset in "${presets[@]}"; do
  echo "=== $(cmake --list-presets | grep "\"${preset}\"" | sed 's/^ *//')"
  start=$SECONDS
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  built=$SECONDS
  ctest --preset "$preset" -j "$jobs"
  echo "=== $preset: built in $((built - start)) s, tested in $((SECONDS - built)) s"
done
