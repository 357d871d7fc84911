#!/usr/bin/env bash
# sweep.sh OUT_DIR: run tp_mlp over TP size {1,2,4} x hidden size {256..2048} with every
# scheme, then write OUT_DIR/sweep.csv and OUT_DIR/sweep.png (via plot_sweep.py).
# Env: TP_MLP (binary, default build/tp_mlp, built if missing), MPIRUN, RUN_TIMEOUT (s/run).
set -euo pipefail

die() { echo "sweep.sh: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: scripts/sweep.sh OUT_DIR"
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TP_SIZES=(1 2 4)
HIDDEN_SIZES=(256 512 1024 2048)
BATCH=4 SEQ=128
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

# Fewer timed passes for large H: the whole sweep takes 1.5-2 min on 2 cores.
iterations_for() { case $1 in 256) echo "50 5" ;; 512) echo "40 3" ;; 1024) echo "20 2" ;; *) echo "8 1" ;; esac; }

# The binary: $TP_MLP if given, else build/tp_mlp, built here if missing.
if [[ -n ${TP_MLP:-} ]]; then
  [[ -x $TP_MLP ]] || die "TP_MLP=$TP_MLP is not an executable file"
else
  TP_MLP=$ROOT/build/tp_mlp
  if [[ ! -x $TP_MLP ]]; then
    echo "sweep.sh: $TP_MLP missing, building it with cmake into $ROOT/build" >&2
    cmake -S "$ROOT" -B "$ROOT/build" >&2 || die "cmake configure failed"
    cmake --build "$ROOT/build" --target tp_mlp -j"$(nproc)" >&2 || die "cmake build failed"
  fi
fi
MPIRUN=${MPIRUN:-$(command -v mpirun || command -v mpiexec || true)}
[[ -n $MPIRUN ]] || die "mpirun not found (install Open MPI, e.g. apt-get install openmpi-bin)"
command -v timeout >/dev/null || die "'timeout' (coreutils) not found"

# Open MPI as root and in containers without ptrace/CMA; never override the caller's values.
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}

# The plot needs Debian's matplotlib for /usr/bin/python3; install it if absent.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  echo "sweep.sh: installing python3-matplotlib with apt-get" >&2
  SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-matplotlib; } \
    || die "could not install python3-matplotlib (run as root: apt-get install python3-matplotlib)"
fi

CORES=$(nproc)
mkdir -p "$OUT/runs" || die "cannot create $OUT/runs"
rm -f "$OUT"/runs/t*_h*.json
start=$SECONDS
for h in "${HIDDEN_SIZES[@]}"; do
  read -r iters warmup < <(iterations_for "$h")
  for t in "${TP_SIZES[@]}"; do
    name=t${t}_h${h}
    over=(); (( t > CORES )) && over=(--oversubscribe)
    printf 'sweep.sh: T=%d H=%-4d (%d iterations%s) ... ' "$t" "$h" "$iters" "${over:+, oversubscribed}" >&2
    rc=0
    timeout --kill-after=10 "$RUN_TIMEOUT" "$MPIRUN" "${over[@]}" -np "$t" "$TP_MLP" \
      --tp-size "$t" --hidden-size "$h" --batch-size "$BATCH" --seq-len "$SEQ" \
      --iterations "$iters" --warmup "$warmup" --scheme all --json "$OUT/runs/$name.json" \
      >"$OUT/runs/$name.log" 2>&1 || rc=$?
    if (( rc != 0 )); then
      echo "FAILED" >&2
      tail -n 15 "$OUT/runs/$name.log" >&2
      (( rc == 124 )) && die "run $name timed out after ${RUN_TIMEOUT}s (raise RUN_TIMEOUT?)"
      die "run $name exited with status $rc; log: $OUT/runs/$name.log"
    fi
    echo "ok" >&2
  done
done
echo "sweep.sh: ${#TP_SIZES[@]}x${#HIDDEN_SIZES[@]} runs took $((SECONDS - start)) s" >&2

/usr/bin/python3 "$ROOT/scripts/plot_sweep.py" "$OUT" --cores "$CORES" || die "plot_sweep.py failed"
echo "sweep.sh: wrote $OUT/sweep.csv, $OUT/sweep.png and $OUT/runs/ (JSON + logs)"
