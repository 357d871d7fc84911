# bench/common.sh, sourced by the bench scripts: the one command line they share,
# SCRIPT [OUT_DIR], its refusals, and the binary they run. Sets `out` and `binary`.
#   bench_arguments USAGE "$@"   (after any option of the script's own has been shifted off)
bench_arguments() {
  local usage=$1 name=${0#"$PWD/"}
  shift
  case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$name: unknown option '$1': $usage" >&2; exit 64 ;;
  esac
  [ $# -le 1 ] || { echo "$name: one OUT_DIR at most: $usage" >&2; exit 64; }
  out="${1:-bench/out}"
  mkdir -p "$out"
  binary="${TP_MLP:-build/tp_mlp}"
}

bench_needs_binary() {
  [ -x "$binary" ] || {
    echo "${0#"$PWD/"}: $binary not built: run scripts/demo.sh or cmake --build --preset release" >&2
    exit 1
  }
}
