# bench/common.sh, sourced by the bench scripts: the one command line they share,
# SCRIPT [OUT_DIR], its refusals, and the binary they run. Sets `out` and `binary`.
# The scripts work from the repository's root, but a relative OUT_DIR or TP_MLP is the
# caller's: each script sets `caller=$PWD` before it changes directory.
#   bench_arguments USAGE "$@"   (after any option of the script's own has been shifted off)
bench_arguments() {
  local usage=$1 name=${0#"$PWD/"}
  shift
  case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$name: unknown option '$1': $usage" >&2; exit 64 ;;
  esac
  [ $# -le 1 ] || { echo "$name: one OUT_DIR at most: $usage" >&2; exit 64; }
  [ "${1-x}" != "" ] || { echo "$name: OUT_DIR must name a directory, not '': $usage" >&2; exit 64; }
  out="bench/out"
  [ $# -eq 0 ] || out=$(bench_callers_path "$1")
  binary="build/tp_mlp"
  [ -z "${TP_MLP:-}" ] || binary=$(bench_callers_path "$TP_MLP")
}

# PATH as the caller meant it: relative to the directory the script was started in.
bench_callers_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$caller/$1" ;;
  esac
}

# The runs about to be made go to OUT_DIR, made if need be.
bench_makes_out() {
  mkdir -p "$out"
}

bench_needs_binary() {
  [ -x "$binary" ] || {
    echo "${0#"$PWD/"}: $binary not built: run scripts/demo.sh or cmake --build --preset release" >&2
    exit 1
  }
}
