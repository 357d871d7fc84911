#!/usr/bin/python3
"""plot_sweep.py OUT_DIR: turn the tp_mlp JSON reports in OUT_DIR/runs/ into
OUT_DIR/sweep.csv (one row per run and scheme) and OUT_DIR/sweep.png (per hidden size,
forward time by TP size: compute + communication per scheme, all-reduce floor marked)."""
import argparse
import csv
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

SCHEMES = ["megatron", "naive", "serial"]
COLORS = {"megatron": "#1f77b4", "naive": "#d62728", "serial": "#7f7f7f"}
COLUMNS = ["tp_size", "hidden_size", "batch_size", "seq_len", "scheme", "forward_ms_median",
           "compute_ms_median", "comm_ms_median", "floor_ms_median", "allreduce_calls",
           "allreduce_bytes", "gflops_per_rank", "speedup_vs_serial", "parallel_efficiency",
           "verified"]


def load_rows(run_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(run_dir, "*.json"))):
        with open(path) as f:
            report = json.load(f)
        cfg = report["config"]
        for scheme in SCHEMES:
            s = report["schemes"].get(scheme)
            if s is None:
                continue
            rows.append({
                "tp_size": cfg["tp_size"], "hidden_size": cfg["hidden_size"],
                "batch_size": cfg["batch_size"], "seq_len": cfg["seq_len"], "scheme": scheme,
                "forward_ms_median": s["forward_ms"]["median"],
                "compute_ms_median": s["compute_ms"]["median"],
                "comm_ms_median": s["comm_ms"]["median"],
                "floor_ms_median": s["floor_ms"]["median"],
                "allreduce_calls": s["allreduce_calls_per_forward"],
                "allreduce_bytes": s["allreduce_bytes_per_forward"],
                "gflops_per_rank": s["gflops_per_rank"],
                "speedup_vs_serial": s["speedup_vs_serial"],
                "parallel_efficiency": s["parallel_efficiency"],
                "verified": s["verification"]["passed"],
            })
    rows.sort(key=lambda r: (r["hidden_size"], r["tp_size"], SCHEMES.index(r["scheme"])))
    return rows


def plot(rows, path, cores):
    hiddens = sorted({r["hidden_size"] for r in rows})
    tps = sorted({r["tp_size"] for r in rows})
    by_key = {(r["hidden_size"], r["tp_size"], r["scheme"]): r for r in rows}
    ncols = 2 if len(hiddens) > 1 else 1
    nrows = (len(hiddens) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 4 * nrows + 1.3), squeeze=False)
    width = 0.27
    for ax, h in zip(axes.flat, hiddens):
        serial1 = by_key.get((h, 1, "serial"))
        base = serial1["forward_ms_median"] if serial1 else None
        top = 1.2 * max(r["compute_ms_median"] + r["comm_ms_median"] for r in rows
                        if r["hidden_size"] == h)
        for i, scheme in enumerate(SCHEMES):
            for j, t in enumerate(tps):
                r = by_key.get((h, t, scheme))
                # Serial always runs alone on one rank: one bar, at T=1, and the dotted line.
                if r is None or (scheme == "serial" and t > 1):
                    continue
                x = j + (i - 1) * width
                color = COLORS[scheme]
                comp, comm = r["compute_ms_median"], r["comm_ms_median"]
                ax.bar(x, comp, width, color=color, edgecolor="white", linewidth=0.5)
                if t > 1 and r["allreduce_calls"] > 0:
                    ax.bar(x, comm, width, bottom=comp, color=color, alpha=0.35,
                           hatch="///", edgecolor=color, linewidth=0)
                    floor = comp + r["floor_ms_median"]
                    ax.plot([x - width / 2, x + width / 2], [floor, floor], color="black", lw=2)
                if scheme != "serial" and t > 1 and base:
                    ax.annotate(f"{base / r['forward_ms_median']:.1f}x", (x, comp + comm),
                                xytext=(0, 2), textcoords="offset points", ha="center",
                                va="bottom", fontsize=8, color=color, fontweight="bold")
                if not r["verified"]:
                    ax.annotate("FAILED", (x, comp + comm), xytext=(0, 12),
                                textcoords="offset points", ha="center", color="red")
        if base:
            ax.axhline(base, color=COLORS["serial"], ls=":", lw=1.2)
        ax.set_xticks(range(len(tps)))
        ax.set_xticklabels([f"T={t}" + (f"\n({t} ranks on {cores} cores)" if t > cores else "")
                            for t in tps])
        ax.set_title(f"H = {h}  (4H = {4 * h})", fontsize=11)
        ax.set_ylabel("forward pass, median ms")
        ax.set_ylim(0, top)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in axes.flat[len(hiddens):]:
        ax.axis("off")
    r0 = rows[0]
    legend = [Patch(color=COLORS[s], label=s) for s in SCHEMES] + [
        Patch(facecolor="white", edgecolor="black", label="compute (solid)"),
        Patch(facecolor="white", edgecolor="black", hatch="///", label="all-reduce (hatched)"),
        Line2D([], [], color="black", lw=2, label="bare all-reduce floor"),
        Line2D([], [], color=COLORS["serial"], ls=":", label="serial on 1 rank (T=1)"),
    ]
    fig.legend(handles=legend, loc="lower center", ncol=7, fontsize=9, frameon=False)
    fig.suptitle(f"Tensor-parallel MLP forward pass: compute vs. communication "
                 f"(batch {r0['batch_size']} x seq {r0['seq_len']}, fp32)",
                 y=0.985, va="top", fontsize=13, fontweight="bold")
    over = ",".join(str(t) for t in tps if t > cores)
    note = ("Bar labels: speed-up over serial, the whole MLP on one rank (dotted line)."
            + (f"\nT={over}: more ranks than the {cores} cores (oversubscribed), so those times are inflated."
               if over else ""))
    fig.text(0.5, 0.945, note, ha="center", va="top", fontsize=9, style="italic")
    fig.tight_layout(rect=(0, 0.035, 1, 0.915))
    fig.savefig(path, dpi=130)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="cores of the machine that ran the sweep")
    args = parser.parse_args()
    rows = load_rows(os.path.join(args.out_dir, "runs"))
    if not rows:
        sys.exit(f"plot_sweep.py: no JSON reports in {args.out_dir}/runs")
    with open(os.path.join(args.out_dir, "sweep.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, os.path.join(args.out_dir, "sweep.png"), args.cores)
    failed = [f"T={r['tp_size']} H={r['hidden_size']} {r['scheme']}" for r in rows
              if not r["verified"]]
    if failed:
        print("plot_sweep.py: WARNING: verification failed for " + ", ".join(failed),
              file=sys.stderr)


if __name__ == "__main__":
    main()
