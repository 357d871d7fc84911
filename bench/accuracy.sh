#!/usr/bin/env bash
# bench/accuracy.sh [OUT_DIR]: what bf16 costs in accuracy. Runs the megatron forward at
# T = 1, 2, 4 in fp32, and in bf16 with an fp32 and a bf16 reduction, and prints the largest
# error of Y relative to max|Y| against the float64 reference of the same (for bf16,
# bf16-rounded) master tensors, with the largest diff/bound (each run must pass its own bound).
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
. scripts/env.sh
. bench/common.sh
bench_arguments "bench/accuracy.sh [OUT_DIR]" "$@"
bench_needs_binary
bench_makes_out
shape=(--hidden-size 1024 --batch-size 4 --seq-len 64 --scheme megatron --iterations 1 --warmup 0)
for tp in 1 2 4; do
  for types in "fp32 fp32" "bf16 fp32" "bf16 bf16"; do
    read -r dtype reduce <<<"$types"
    crowded=()
    [ "$tp" -le "$(nproc)" ] || crowded=(--oversubscribe)
    timeout 600 mpirun "${crowded[@]}" -np "$tp" "$binary" --tp-size "$tp" "${shape[@]}" \
      --dtype "$dtype" --reduce-dtype "$reduce" --json "$out/accuracy_${tp}_${dtype}_${reduce}.json" >/dev/null
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
print("| T | fp32 | bf16, fp32 reduction | bf16, bf16 reduction |")
print("|---|---|---|---|")
for tp in [1, 2, 4]:
    cells = []
    for dtype, reduce in [("fp32", "fp32"), ("bf16", "fp32"), ("bf16", "bf16")]:
        v = json.load(open(os.path.join(out, f"accuracy_{tp}_{dtype}_{reduce}.json")))["verification"]
        verdict = "" if v["passed"] else " FAILED"
        cells.append(f"{v['max_rel_diff']:.2e} ({v['max_diff_over_bound']:.2g} of its bound){verdict}")
    print(f"| {tp} | " + " | ".join(cells) + " |")
PY
