#!/usr/bin/env bash
# Set-up and tests in one: installs packages, then for each build flavour (CMakePresets.json)
# configures, builds and runs every test under ctest.
#   scripts/test.sh                # release (oneDNN), eigen, asan (ASan+UBSan), mpich
#   scripts/test.sh release        # just one
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release eigen asan mpich)
known=$(cmake --list-presets | sed -n 's/^ *"\([^"]*\)".*/\1/p' | tr '\n' ' ')
for preset in "${presets[@]}"; do
  case " $known" in
    *" $preset "*) ;;
    *) echo "scripts/test.sh: no preset '$preset': choose from ${known% }" >&2; exit 64 ;;
  esac
done
for preset in "${presets[@]}"; do
  echo "=== $(cmake --list-presets | grep "\"${preset}\"" | sed 's/^ *//')"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
  ctest --preset "$preset"
done
