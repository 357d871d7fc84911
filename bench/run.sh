#!/usr/bin/env bash
# bench/run.sh [OUT_DIR]: the performance targets, measured. Runs tp_mlp at the
# configurations below (2 ranks, Megatron scheme) and prints, per run, the ratios the
# targets are stated in; each run's JSON report stays in OUT_DIR (default bench/out).
#   forward at % of the core's measured FMA peak (whole forward: GEMMs, GeLU, all-reduce)
#   forward time / bound, bound = per-rank FLOPs / peak + the bare all-reduce's time
#   rank 0's peak RSS over baseline / its estimated tensors
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out="${1:-bench/out}"
mkdir -p "$out"
binary="${TP_MLP:-build/tp_mlp}"
[ -x "$binary" ] || { echo "bench/run.sh: $binary not built: run scripts/demo.sh or cmake --build --preset release" >&2; exit 1; }

ranks=2
oversubscribe=()
[ "$ranks" -le "$(nproc)" ] || oversubscribe=(--oversubscribe)
# name | flags (after --tp-size 2)
configs=(
  "large|--hidden-size 1024 --batch-size 8 --seq-len 128 --iterations 100"
  "script|--hidden-size 256 --batch-size 4 --seq-len 16 --iterations 1000"
  "large_backward|--hidden-size 1024 --batch-size 8 --seq-len 128 --iterations 50 --backward"
)
for entry in "${configs[@]}"; do
  name="${entry%%|*}"
  read -r -a flags <<<"${entry#*|}"
  echo "bench: $name: mpirun -np $ranks tp_mlp --tp-size $ranks ${flags[*]} --scheme megatron" >&2
  timeout 600 mpirun "${oversubscribe[@]}" -np "$ranks" "$binary" --tp-size "$ranks" "${flags[@]}" \
    --scheme megatron --json "$out/$name.json" >"$out/$name.log"
done

/usr/bin/python3 - "$out" <<'PY'
import json, os, platform, sys
out = sys.argv[1]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
first = json.load(open(os.path.join(out, "large.json")))
print(f"machine: {model}, {os.cpu_count()} cores, {isa}; GEMM: {first['config']['gemm_backend']}; "
      f"FMA peak {first['machine']['fma_peak_gflops_per_core']:.0f} GFLOP/s per core")
print(f"| run | H x tokens | pass | median ms | GFLOP/s/rank | % of peak | bound ms | time / bound | RSS / estimate |")
print(f"|---|---|---|---|---|---|---|---|---|")
for name in ["large", "script", "large_backward"]:
    d = json.load(open(os.path.join(out, name + ".json")))
    c, s, m = d["config"], d["schemes"]["megatron"], d["memory"]
    peak = d["machine"]["fma_peak_gflops_per_core"]
    rss = (m["peak_rss_bytes"] - m["baseline_rss_bytes"]) / m["estimated_bytes"]
    shape = f"{c['hidden_size']} x {c['batch_size'] * c['seq_len']}"
    print(f"| {name} | {shape} | forward | {s['forward_ms']['median']:.3f} | {s['gflops_per_rank']:.1f} | "
          f"{s['percent_of_peak']:.0f}% | {s['bound_ms']:.3f} | {s['forward_over_bound']:.2f} | {rss:.2f} |")
    if "step_ms" in s.get("backward", {}):
        b = s["backward"]
        step = b["step_ms"]["median"]
        print(f"| {name} | {shape} | fwd+bwd | {step:.3f} | {b['gflops_per_rank']:.1f} | "
              f"{100 * b['gflops_per_rank'] / peak:.0f}% | {b['bound_ms']:.3f} | {step / b['bound_ms']:.2f} | {rss:.2f} |")
large, script = (json.load(open(os.path.join(out, n + ".json")))["schemes"]["megatron"] for n in ["large", "script"])
print()
print(f"target 1 (large forward >= 80% of peak): {large['percent_of_peak']:.0f}% -> "
      f"{'met' if large['percent_of_peak'] >= 80 else 'NOT met'}")
print(f"target 2 (script forward <= 1.3 x bound): {script['forward_over_bound']:.2f}x -> "
      f"{'met' if script['forward_over_bound'] <= 1.3 else 'NOT met'}")
PY
