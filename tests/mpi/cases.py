#!/usr/bin/env python3
"""Whole-program tests of tp_mlp under mpiexec, one case per ctest test.

Every launch has its own timeout (a hang fails the case instead of stalling CI), and
every expectation comes from what the program printed or wrote, checked against figures
computed here independently (formulas, NumPy).
"""
import argparse
import json
import math
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

LAUNCH_TIMEOUT = 100   # seconds for one mpiexec run
FAIL_FAST_SECONDS = 10  # a refused input must end the job within this
U = 2.0 ** -24          # fp32 unit round-off
SECTIONS = ["CORRECTNESS VERIFICATION", "COMMUNICATION ANALYSIS", "BENCHMARK", "SCALING ANALYSIS"]
QUICK = ["--iterations", "3", "--warmup", "1"]
SKIPPED = 77            # exit status of a case that cannot run here: SKIP_RETURN_CODE in CMakeLists.txt

ARGS = None


def mpiexec_prefix(ranks):
    return [ARGS.mpiexec, *shlex.split(ARGS.preflags), ARGS.np_flag, str(ranks)]


def timed_run(cmd, timeout=LAUNCH_TIMEOUT):
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    result.seconds = time.monotonic() - start
    result.cmd = " ".join(cmd)
    return result


def launch(ranks, *flags, mpiexec=True, timeout=LAUNCH_TIMEOUT):
    cmd = [ARGS.binary, *flags]
    if mpiexec:
        cmd = [*mpiexec_prefix(ranks), *cmd]
    return timed_run(cmd, timeout)


def expect(condition, message, result=None):
    if condition:
        return
    detail = ""
    if result is not None:
        detail = f"\n$ {result.cmd}\nexit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    raise AssertionError(message + detail)


def run_ok(ranks, *flags, **kw):
    result = launch(ranks, *flags, **kw)
    expect(result.returncode == 0, f"expected exit 0, got {result.returncode}", result)
    return result


def report(ranks, tp, *flags, **kw):
    """Runs and returns (result, parsed JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.json")
        result = run_ok(ranks, "--tp-size", str(tp), *flags, "--json", path, **kw)
        with open(path) as f:
            doc = json.load(f)
    counted_as_formulas(doc, result)
    return result, doc


def counted_as_formulas(doc, result):
    """Whatever else a case checks: every pass of every scheme moved what its formula says."""
    for name, scheme in doc.get("schemes", {}).items():
        for direction in ["forward", "backward"]:
            if isinstance(scheme.get(direction), dict) and "matches_formula" in scheme[direction]:
                expect(scheme[direction]["matches_formula"] is True,
                       f"{name} {direction}: counted {scheme[direction]} against its formula", result)


def dig(doc, dotted):
    for key in dotted.split("."):
        expect(isinstance(doc, dict) and key in doc, f"JSON lacks key {dotted}")
        doc = doc[key]
    return doc


def check_full_report(ranks, hidden):
    result, doc = report(ranks, ranks, "--hidden-size", str(hidden), *QUICK)
    out = result.stdout
    for title in SECTIONS:
        expect(out.count(" " + title + "\n") == 1, f"section {title} should appear once", result)
    expect("Correct: True" in out, "verification should pass", result)
    expect(result.stderr.strip() == "", "a good run should print nothing on stderr", result)

    tokens = 4 * 16  # default batch x seq
    for key in ["config.tp_size", "config.world_size", "config.hidden_size", "config.intermediate_size",
                "config.batch_size", "config.seq_len", "config.iterations", "config.warmup", "config.seed",
                "verification.passed", "verification.max_abs_diff", "verification.max_rel_diff",
                "verification.tolerance", "communication.allreduce_calls_per_forward",
                "communication.bytes_per_allreduce", "communication.ring_bytes_per_rank",
                "benchmark.forward_ms.mean", "benchmark.forward_ms.median", "benchmark.forward_ms.min",
                "benchmark.forward_ms.max", "benchmark.gflops", "memory.weight_bytes_per_rank",
                "memory.peak_rss_bytes", "floor.bytes", "floor.allreduce_ms.median"]:
        dig(doc, key)
    expect(dig(doc, "config.tp_size") == ranks and dig(doc, "config.hidden_size") == hidden, "config echoed")
    # More ranks than cores: they time-share, and the report must say so beside the numbers.
    crowded = ranks > len(os.sched_getaffinity(0))
    expect(dig(doc, "machine.oversubscribed") is crowded, f"oversubscribed should be {crowded}")
    expect(dig(doc, "machine.ranks_on_node") == ranks, "ranks on the node")
    expect(("ranks share" in out) == crowded, "BENCHMARK notes time-sharing exactly when crowded", result)
    expect(dig(doc, "config.intermediate_size") == 4 * hidden, "intermediate is 4H")
    expect(dig(doc, "verification.passed") is True, "JSON verification passed")

    # What the communication layer counted, against the formulas worked out here.
    y_bytes = tokens * hidden * 4
    expected = {"megatron": (1, y_bytes), "naive": (2, 5 * y_bytes), "serial": (0, 0)}
    for scheme, (calls, nbytes) in expected.items():
        s = dig(doc, f"schemes.{scheme}")
        for key in ["forward_ms.mean", "forward_ms.median", "forward_ms.min", "forward_ms.max",
                    "compute_ms.median", "comm_ms.median", "gflops_per_rank", "floor_ms.median",
                    "verification.passed", "verification.max_abs_diff"]:
            dig(s, key)
        expect(s["allreduce_calls_per_forward"] == calls, f"{scheme}: counted {s['allreduce_calls_per_forward']} all-reduces, expected {calls}")
        expect(s["allreduce_bytes_per_forward"] == nbytes, f"{scheme}: counted {s['allreduce_bytes_per_forward']} bytes, expected {nbytes}")
        expect(s["verification"]["passed"] is True, f"{scheme} verified")
        t = s["forward_ms"]
        expect(0 < t["min"] <= t["median"] <= t["max"], f"{scheme}: timing summary is ordered: {t}")
    expect(dig(doc, "communication.bytes_per_allreduce") == y_bytes, "bytes per all-reduce")
    ring = 2 * y_bytes * (ranks - 1) / ranks
    expect(math.isclose(dig(doc, "communication.ring_bytes_per_rank"), ring), "ring volume formula")
    weights = 8 * hidden * hidden * 4 // ranks
    expect(dig(doc, "memory.weight_bytes_per_rank") == weights, "megatron shard bytes are 8H^2/T floats")


def case_verify_1_rank():
    check_full_report(1, 64)


def case_verify_2_ranks():
    check_full_report(2, 256)


def case_verify_4_ranks():
    check_full_report(4, 256)


def case_two_tp_groups():
    result, doc = report(4, 2, "--hidden-size", "128", *QUICK)
    expect("2 groups of 2" in result.stdout, "banner names the groups", result)
    expect(doc["verification"]["passed"] is True, "both groups verified")
    expect(doc["schemes"]["megatron"]["allreduce_calls_per_forward"] == 1, "still one all-reduce")


def save_tensors(ranks, directory, *flags):
    """Runs with --save-tensors and loads every .npy file the run wrote."""
    run_ok(ranks, "--tp-size", str(ranks), "--save-tensors", directory, *flags, *QUICK)
    return {name[:-4]: np.load(os.path.join(directory, name))
            for name in os.listdir(directory) if name.endswith(".npy")}


def silu(a):
    return a / (1.0 + np.exp(-a))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def forward(t):
    """float64 forward of the saved model: (pre-activation(s), activation, y) for [tokens, H]."""
    x = t["x"].astype(np.float64).reshape(-1, t["x"].shape[-1])
    b = lambda name: t[name].astype(np.float64) if name in t else 0.0
    a = x @ t["w1"].astype(np.float64) + b("b1")
    if "w3" in t:  # SwiGLU: gate a, up c
        c = x @ t["w3"].astype(np.float64) + b("b3")
        act = silu(a) * c
    else:
        c, act = None, gelu(a)
    y = act @ t["w2"].astype(np.float64) + b("b2")
    return x, a, c, act, y


def y_bound(t, x, a, c, act):
    """An element-wise bound on a float32 forward's error, computed independently of the
    program's: gamma_n * sum|terms| through each sum, the activation's slope (GeLU <= 1.13,
    SiLU <= 1.1) and a few units of its own float error."""
    H, F = x.shape[1], act.shape[1]
    w2 = np.abs(t["w2"].astype(np.float64))
    b_abs = lambda name: np.abs(t[name].astype(np.float64)) if name in t else 0.0
    pre_error = lambda w, b: (H + 1) * U * (np.abs(x) @ np.abs(t[w].astype(np.float64)) + b_abs(b))
    da = pre_error("w1", "b1")
    if c is None:
        act_error = 1.13 * da + U * (8 * np.abs(act) + 4)
    else:
        dc = pre_error("w3", "b3")
        s = np.abs(silu(a))
        act_error = (1.1 * da + U * (8 * s + 4)) * (np.abs(c) + dc) + s * dc + U * np.abs(act)
    return 1.01 * ((F + 1) * U * (np.abs(act) @ w2 + b_abs("b2")) + act_error @ w2)


def gelu(h):
    return 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))


def tolerance(hidden, y):
    # The program's own bound: n = H + 4H accumulated fp32 terms, relative to max |y|.
    return 5 * hidden * U * np.abs(y).max()


def case_same_model_at_every_tp_size():
    hidden = 128
    with tempfile.TemporaryDirectory() as tmp:
        runs = {t: save_tensors(t, os.path.join(tmp, str(t)), "--hidden-size", str(hidden),
                                "--scheme", "megatron") for t in (1, 2, 4)}
    for t in (2, 4):
        for name in ["x", "w1", "w2"]:
            expect(np.array_equal(runs[t][name], runs[1][name]),
                   f"{name} at TP {t} must be bit-identical to TP 1")
        diff = np.abs(runs[t]["y"].astype(np.float64) - runs[1]["y"]).max()
        expect(diff <= tolerance(hidden, runs[1]["y"]), f"y at TP {t} differs from TP 1 by {diff:.3e}")


def case_same_swiglu_model_at_every_tp_size():
    # H 64, F 170 and 14 tokens: at 3 ranks the shards (57, 57, 56 columns) and the token
    # blocks (5, 5, 4) are uneven, and nothing may change but the last bits of Y.
    flags = ["--hidden-size", "64", "--activation", "swiglu", "--ffn-hidden-size", "170",
             "--batch-size", "2", "--seq-len", "7", "--bias", "--backward", "--sequence-parallel"]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {t: save_tensors(t, os.path.join(tmp, str(t)), *flags) for t in (1, 2, 3, 4)}
        reports = {t: report(t, t, *flags, *QUICK)[1] for t in (2, 3)}
    expect(sorted(runs[1]) == sorted(["x", "w1", "w3", "w2", "b1", "b3", "b2", "y", "dy", "dx",
                                      "dw1", "dw3", "dw2", "db1", "db3", "db2"]),
           f"the SwiGLU tensor set: {sorted(runs[1])}")
    x, a, c, act, y_ref = forward(runs[1])
    bound = y_bound(runs[1], x, a, c, act)
    for t in (1, 2, 3, 4):
        for name in ["x", "w1", "w3", "w2", "b1", "b3", "b2", "dy"]:
            expect(np.array_equal(runs[t][name], runs[1][name]),
                   f"{name} at TP {t} must be bit-identical to TP 1")
        diff = np.abs(runs[t]["y"].reshape(y_ref.shape) - y_ref)
        expect((diff <= bound).all(), f"y at TP {t} exceeds the float bound: {(diff / bound).max():.2f}x")
    shards = reports[3]["shards"]
    expect(shards["ffn_columns"]["per_rank"] == [57, 57, 56], f"F's shards: {shards}")
    expect(shards["sequence_parallel_tokens"]["per_rank"] == [5, 5, 4], f"token blocks: {shards}")
    for t, doc in reports.items():
        expect(doc["verification"]["passed"] is True, f"TP {t} verified")
        for scheme, s in doc["schemes"].items():
            for d in ["forward"] + (["backward"] if "backward" in s else []):
                expect(s[d]["matches_formula"] is True, f"TP {t} {scheme} {d}: counted = formula")
        for d in ["forward", "backward"]:
            expect(doc["schemes"]["megatron"][d]["counted"]["all_reduce"] == {"calls": 1, "bytes": 14 * 64 * 4},
                   f"TP {t}: megatron {d} is one all-reduce of [tokens, H] with SwiGLU too")
        naive = doc["schemes"]["naive"]["forward"]["counted"]["all_reduce"]
        expect(naive == {"calls": 2, "bytes": 14 * (2 * 170 + 64) * 4},
               f"TP {t}: naive sums both [tokens, F] pre-activations and Y: {naive}")


def case_numpy_checks_the_gradients():
    """The saved gradients of sum(y * dy), against NumPy's chain rule, for both activations."""
    for activation in ["gelu", "swiglu"]:
        flags = ["--hidden-size", "48", "--activation", activation, "--ffn-hidden-size", "100",
                 "--batch-size", "2", "--seq-len", "5", "--bias", "--backward", "--scheme", "megatron"]
        with tempfile.TemporaryDirectory() as tmp:
            t = save_tensors(3, tmp, *flags)
        x, a, c, act, y = forward(t)
        dy = t["dy"].astype(np.float64).reshape(y.shape)
        d_act = dy @ t["w2"].astype(np.float64).T
        if c is None:
            slope = 0.5 * (1 + np.vectorize(math.erf)(a / math.sqrt(2))) + a * np.exp(-a * a / 2) / math.sqrt(2 * math.pi)
            grads = {"dw1": x.T @ (d_act * slope), "db1": (d_act * slope).sum(0),
                     "dx": (d_act * slope) @ t["w1"].astype(np.float64).T}
        else:
            s = sigmoid(a)
            d_gate, d_up = d_act * c * s * (1 + a * (1 - s)), d_act * a * s
            grads = {"dw1": x.T @ d_gate, "dw3": x.T @ d_up, "db1": d_gate.sum(0), "db3": d_up.sum(0),
                     "dx": d_gate @ t["w1"].astype(np.float64).T + d_up @ t["w3"].astype(np.float64).T}
        grads.update({"dw2": act.T @ dy, "db2": dy.sum(0)})
        for name, ref in grads.items():
            got = t[name].astype(np.float64).reshape(ref.shape)
            diff = np.abs(got - ref).max() / np.abs(ref).max()
            expect(diff < 1e-4, f"{activation} {name} differs from the chain rule by {diff:.2e} of its scale")
        # The check can fail: the gate's gradient in place of the up projection's is caught.
        if c is not None:
            swapped = np.abs(t["dw1"] - grads["dw3"]).max() / np.abs(grads["dw3"]).max()
            expect(swapped > 1e-2, "dW1 and dW3 must not be interchangeable")
        print(f"{activation}: {len(grads)} gradients agree with NumPy's chain rule")


# --block layer's saved tensors, re-computed in NumPy from the definitions alone: LayerNorm or
# RMSNorm, RoPE in Hugging Face's rotate-half form, causal softmax attention per sequence with
# query head q on KV head q*K//N, the MLP, the residuals; then every gradient of sum(y * dy) by
# central differences of that float64 forward, sharing nothing with the program.
NORM_EPS = 1e-5


def layer_forward(t, p, kind, heads, kv_heads, seq, theta=10000.0):
    """float64 forward of the saved layer, parameters `p` (a dict of arrays) and input p["x"]."""
    x = p["x"].reshape(-1, p["x"].shape[-1])
    tokens, hidden = x.shape
    d = hidden // heads

    def norm(v, w, b):
        centre = v.mean(-1, keepdims=True) if kind == "layernorm" else 0.0
        c = v - centre
        out = c / np.sqrt((c * c).mean(-1, keepdims=True) + NORM_EPS) * w
        return out + b if b is not None else out

    def rope(v, n):
        pos = (np.arange(tokens) % seq)[:, None]
        angle = pos * theta ** (-2.0 * np.arange(d // 2) / d)
        v = v.reshape(tokens, n, d).copy()
        a, b = v[:, :, :d // 2].copy(), v[:, :, d // 2:].copy()
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        v[:, :, :d // 2], v[:, :, d // 2:] = a * cos - b * sin, b * cos + a * sin
        return v.reshape(tokens, n * d)

    get = lambda name: p.get(name)
    bias = lambda name: p[name] if name in p else 0.0
    n1 = norm(x, p["norm1_w"], get("norm1_b"))
    q = rope(n1 @ p["wq"] + bias("bq"), heads)
    k = rope(n1 @ p["wk"] + bias("bk"), kv_heads)
    v = n1 @ p["wv"] + bias("bv")
    o = np.zeros((tokens, heads * d))
    mask = np.tril(np.ones((seq, seq), dtype=bool))
    for first in range(0, tokens, seq):
        rows = slice(first, first + seq)
        for h in range(heads):
            kv = h * kv_heads // heads
            s = q[rows, h * d:(h + 1) * d] @ k[rows, kv * d:(kv + 1) * d].T / math.sqrt(d)
            s = np.where(mask, s, -np.inf)
            e = np.exp(s - s.max(-1, keepdims=True))
            o[rows, h * d:(h + 1) * d] = (e / e.sum(-1, keepdims=True)) @ v[rows, kv * d:(kv + 1) * d]
    h_ = x + o @ p["wo"] + bias("bo")
    n2 = norm(h_, p["norm2_w"], get("norm2_b"))
    a = n2 @ p["w1"] + bias("b1")
    act = silu(a) * (n2 @ p["w3"] + bias("b3")) if "w3" in p else 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
    return h_ + act @ p["w2"] + bias("b2")


def case_numpy_checks_the_layer():
    """The layer's saved tensors: y from NumPy's forward, and every gradient (attention's, the
    MLP's, the norms') by central differences of it, at 3 ranks: uneven heads, a KV head on two
    ranks, uneven F."""
    heads, kv_heads, hidden, seq = 3, 1, 24, 4
    for kind, activation in [("layernorm", "gelu"), ("rmsnorm", "swiglu")]:
        flags = ["--block", "layer", "--hidden-size", str(hidden), "--num-heads", str(heads),
                 "--num-kv-heads", str(kv_heads), "--ffn-hidden-size", "20", "--activation", activation,
                 "--norm", kind, "--batch-size", "2", "--seq-len", str(seq), "--bias", "--backward",
                 "--scheme", "megatron"]
        with tempfile.TemporaryDirectory() as tmp:
            t = save_tensors(3, tmp, *flags)
        p = {name: a.astype(np.float64) for name, a in t.items()
             if name not in ("y", "dy", "dx") and not name.startswith("d")}
        y = layer_forward(t, p, kind, heads, kv_heads, seq)
        diff = np.abs(t["y"].reshape(y.shape) - y).max() / np.abs(y).max()
        expect(diff < 1e-5, f"{kind}: y differs from NumPy's layer by {diff:.2e} of its scale")
        dy = t["dy"].astype(np.float64).reshape(y.shape)
        checked = []
        for name in sorted(p):
            grad = t.get("d" + name)
            expect(grad is not None, f"{kind}: no d{name}.npy saved")
            numeric = np.zeros(p[name].size)
            flat = p[name].reshape(-1)
            step = 1e-6
            for i in range(flat.size):
                keep = flat[i]
                flat[i] = keep + step
                plus = (layer_forward(t, p, kind, heads, kv_heads, seq) * dy).sum()
                flat[i] = keep - step
                minus = (layer_forward(t, p, kind, heads, kv_heads, seq) * dy).sum()
                flat[i] = keep
                numeric[i] = (plus - minus) / (2 * step)
            got = grad.astype(np.float64).reshape(-1)
            diff = np.abs(got - numeric).max() / np.abs(numeric).max()
            expect(diff < 1e-4, f"{kind}: d{name} differs from central differences by {diff:.2e} of its scale")
            checked.append(f"d{name}")
        # The check can fail: dWk against dWv's differences is caught.
        expect(np.abs(t["dwk"] - t["dwv"]).max() > 1e-2 * np.abs(t["dwv"]).max(), "dWk and dWv differ")
        print(f"{kind} {activation}: y and {len(checked)} gradients agree with NumPy: {' '.join(checked)}")


def case_numpy_checks_swiglu():
    hidden, ranks = 64, 3
    with tempfile.TemporaryDirectory() as tmp:
        t = save_tensors(ranks, tmp, "--hidden-size", str(hidden), "--activation", "swiglu",
                         "--ffn-hidden-size", "170", "--batch-size", "2", "--seq-len", "7", "--bias")
    expect(t["w1"].shape == (hidden, 170) and t["w3"].shape == (hidden, 170), "gate and up are [H, F]")
    expect(t["w2"].shape == (170, hidden), "W2 is [F, H]")
    x, a, c, act, y_ref = forward(t)
    bound = y_bound(t, x, a, c, act)
    diff = np.abs(t["y"].reshape(y_ref.shape) - y_ref)
    expect((diff <= bound).all(), f"y exceeds the float bound by {(diff / bound).max():.2f}x")
    # The check can fail: the gate and up projections interchanged are caught.
    wrong = silu(c) * a @ t["w2"].astype(np.float64) + t["b2"]
    expect((np.abs(t["y"].reshape(y_ref.shape) - wrong) > bound).any(), "SiLU(up) * gate must be caught")


def case_numpy_checks_the_saved_tensors():
    hidden, ranks = 64, 2
    with tempfile.TemporaryDirectory() as tmp:
        t = save_tensors(ranks, tmp, "--hidden-size", str(hidden), "--batch-size", "2", "--seq-len", "8")
        # Temporaries are hidden names (.x.npy.XXXXXXXX); the old ones ended in .tmp.
        leftovers = [f for f in os.listdir(tmp) if f.startswith(".") or not f.endswith(".npy")]
    expect(not leftovers, f"temporary files left behind: {leftovers}")
    expect(t["x"].shape == (2, 8, hidden) and t["y"].shape == (2, 8, hidden), "activation shapes")
    expect(t["w1"].shape == (hidden, 4 * hidden) and t["w2"].shape == (4 * hidden, hidden), "weight shapes")
    expect(all(a.dtype == np.float32 for a in t.values()), "float32 everywhere")
    bound = math.sqrt(6.0 / (5 * hidden))
    expect(np.abs(t["w1"]).max() <= bound and np.abs(t["w1"]).max() > 0.95 * bound, "xavier bound of W1")

    x, w1, w2 = (t[n].astype(np.float64) for n in ["x", "w1", "w2"])
    y_ref = gelu(x @ w1) @ w2
    diff = np.abs(t["y"] - y_ref).max()
    expect(diff <= tolerance(hidden, y_ref), f"y differs from NumPy's float64 forward by {diff:.3e}")
    # The check can fail: the reference script's model (W2 divided by T) is caught.
    wrong = gelu(x @ w1) @ (w2 / ranks)
    expect(np.abs(t["y"] - wrong).max() > 100 * tolerance(hidden, y_ref), "a wrong model must be caught")


def case_bitwise_deterministic():
    flags = ["--hidden-size", "64", "--scheme", "megatron"]
    with tempfile.TemporaryDirectory() as tmp:
        first = save_tensors(2, os.path.join(tmp, "a"), *flags)
        second = save_tensors(2, os.path.join(tmp, "b"), *flags)
    for name in first:
        expect(first[name].tobytes() == second[name].tobytes(), f"{name}.npy differs between two identical runs")


def descendants(pid):
    """Pids of every process below `pid` (mpiexec may launch through a proxy)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def program_ranks(pid):
    name = os.path.basename(ARGS.binary)[:15]  # /proc/PID/comm is cut at 15 characters
    ranks = []
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == name:
                    ranks.append(p)
        except OSError:
            pass
    return ranks


def wait_for_output(proc, text, seconds):
    # Raw reads: a buffered reader could hold the awaited line where select() cannot see it.
    deadline = time.monotonic() + seconds
    seen = b""
    while time.monotonic() < deadline and text.encode() not in seen:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    if text.encode() not in seen:
        raise AssertionError(f"never printed {text!r} within {seconds} s; saw:\n{seen.decode()}")


def kill_job(proc, ranks):
    """Whatever is left of a launched job: its ranks, then the launcher's process group."""
    for pid in ranks:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def signal_a_rank_mid_benchmark(sig, wait_seconds, *flags):
    """Starts a long 2-rank benchmark and, once it is inside its timed loop, sends `sig` to the
    last rank from outside. Returns (exit code, stderr, seconds from the signal to the end of
    the job, the rank pids); every process of the job is gone when it returns."""
    cmd = [*mpiexec_prefix(2), ARGS.binary, "--tp-size", "2", "--hidden-size", "256",
           "--scheme", "megatron", "--iterations", "1000000", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    ranks = []
    try:
        wait_for_output(proc, "COMMUNICATION ANALYSIS", 60)
        time.sleep(0.5)  # inside the timed loop now
        ranks = program_ranks(proc.pid)
        expect(len(ranks) == 2, f"expected 2 rank processes under mpiexec, found {ranks}")
        os.kill(ranks[-1], sig)
        start = time.monotonic()
        try:
            code = proc.wait(timeout=wait_seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"job still running {wait_seconds} s after {sig.name} to a rank")
        seconds = time.monotonic() - start
        print(f"job ended {seconds:.1f} s after {sig.name}, exit {code}")
        return code, proc.stderr.read().decode(), seconds, ranks
    finally:
        kill_job(proc, ranks)


def case_dead_rank_ends_the_job():
    """A rank killed from outside mid-benchmark ends the whole job, non-zero, within seconds,
    and leaves no rank process behind."""
    code, _, _, ranks = signal_a_rank_mid_benchmark(signal.SIGKILL, FAIL_FAST_SECONDS)
    expect(code != 0, "a job that lost a rank must not exit 0")
    time.sleep(0.5)
    survivors = [p for p in ranks if alive(p)]
    expect(not survivors, f"rank processes left behind: {survivors}")


def case_one_rank_out_of_memory_aborts():
    # Rank 1 alone runs under a 1.5 GiB address-space limit, too small for its 1 GiB of
    # weights plus MPI's mappings; rank 0 has no limit and goes on into a collective.
    flags = ["--tp-size", "2", "--hidden-size", "8192", "--scheme", "megatron", "--iterations", "1"]
    limited = f"ulimit -v {3 * 512 * 1024} && exec {shlex.quote(ARGS.binary)} " + " ".join(flags)
    cmd = [*mpiexec_prefix(1), ARGS.binary, *flags, ":", ARGS.np_flag, "1", "/bin/sh", "-c", limited]
    result = timed_run(cmd)
    expect(result.returncode != 0, "the job must fail", result)
    expect("tp_mlp: rank 1: out of memory" in result.stderr, "the failing rank is named", result)
    expect(result.seconds < 30, f"took {result.seconds:.1f} s to end", result)


def case_bias_is_added_once():
    # b2 must be added after the all-reduce; added on every rank before it, it counts T times.
    hidden, ranks = 64, 2
    with tempfile.TemporaryDirectory() as tmp:
        t = save_tensors(ranks, tmp, "--hidden-size", str(hidden), "--bias", "--scheme", "megatron")
    expect(t["b1"].shape == (1, 4 * hidden) and t["b2"].shape == (1, hidden), "bias shapes")
    expect(np.abs(t["b2"]).max() > 0, "a bias that is all zeros would prove nothing")
    x, w1, w2, b1, b2 = (t[n].astype(np.float64) for n in ["x", "w1", "w2", "b1", "b2"])
    y_ref = gelu(x @ w1 + b1) @ w2 + b2
    diff = np.abs(t["y"] - y_ref).max()
    expect(diff <= tolerance(hidden, y_ref), f"y differs from NumPy's forward with biases by {diff:.3e}")
    wrong = gelu(x @ w1 + b1) @ w2 + ranks * b2
    expect(np.abs(t["y"] - wrong).max() > 100 * tolerance(hidden, y_ref), "T x b2 must be caught")


def flag_value(flags, name, default):
    return flags[flags.index(name) + 1] if name in flags else default


def check_whole_block(ranks, *flags):
    """--backward, --bias, --sequence-parallel (some or all): verified and counted; in bf16
    the activations travel in 2 bytes, and the partial sums in the reduce dtype's."""
    hidden = 128
    result, doc = report(ranks, ranks, "--hidden-size", str(hidden), *flags, *QUICK)
    expect("Correct: True" in result.stdout, "verification passes", result)
    expect(doc["verification"]["passed"] is True, "JSON verification passed")
    dtype = flag_value(flags, "--dtype", "fp32")
    size = {"fp32": 4, "bf16": 2}
    elements = 4 * 16 * hidden
    y_bytes = elements * size[flag_value(flags, "--reduce-dtype", dtype)]  # partial sums
    x_bytes = elements * size[dtype]  # what sequence parallelism gathers
    schemes = doc["schemes"]
    backward, sp = "--backward" in flags, "--sequence-parallel" in flags
    expect(("megatron-sp" in schemes) == sp, "megatron-sp runs exactly with --sequence-parallel")
    expect(doc["config"]["bias"] == ("--bias" in flags), "bias echoed")

    def counted(scheme, direction):
        return schemes[scheme][direction]["counted"]

    # Shoeybi et al. 2019: one all-reduce forward (g), one backward (f).
    directions = ["forward", "backward"] if backward else ["forward"]
    for d in directions:
        c = counted("megatron", d)
        expect(c["all_reduce"] == {"calls": 1, "bytes": y_bytes}, f"megatron {d}: {c}")
        expect(c["all_gather"]["calls"] == 0 and c["reduce_scatter"]["calls"] == 0, f"megatron {d}: {c}")
        expect(schemes["megatron"][d]["matches_formula"] is True, f"megatron {d} matches formula")
        s = counted("serial", d)
        expect(s["calls"] == 0, f"serial {d} communicates nothing: {s}")
        if sp:  # Korthikanti et al. 2022: all-gather + reduce-scatter of the same total volume.
            c_sp = counted("megatron-sp", d)
            expect(c_sp["all_reduce"]["calls"] == 0, f"megatron-sp {d} has no all-reduce: {c_sp}")
            expect(c_sp["all_gather"] == {"calls": 1, "bytes": x_bytes}, f"megatron-sp {d}: {c_sp}")
            expect(c_sp["reduce_scatter"] == {"calls": 1, "bytes": y_bytes}, f"megatron-sp {d}: {c_sp}")
            if x_bytes == y_bytes:
                expect(math.isclose(c_sp["ring_bytes_per_rank"], c["ring_bytes_per_rank"]),
                       f"{d}: sequence parallelism must move the all-reduce's bytes")
    if not backward:
        expect("backward" not in schemes["megatron"], "no backward without --backward")
        return
    for scheme in ["megatron", "serial"] + (["megatron-sp"] if sp else []):
        checks = schemes[scheme]["backward"]["verification"]
        swiglu = flag_value(flags, "--activation", "gelu") == "swiglu"
        wanted = {"dX", "dW1", "dW2"} | ({"dW3"} if swiglu else set())
        if "--bias" in flags:
            wanted |= {"db1", "db2"} | ({"db3"} if swiglu else set())
        expect(set(checks) == wanted, f"{scheme} checks {sorted(checks)}")
        expect(all(v["passed"] for v in checks.values()), f"{scheme} gradients verified: {checks}")
        for key in ["step_ms", "compute_ms", "comm_ms", "floor_ms"]:
            dig(schemes[scheme]["backward"], key + ".median")
    dig(doc, "backward.verification.dX.passed")
    dig(doc, "backward.counted.all_reduce.calls")
    if sp:
        dig(doc, "sequence_parallel.forward.counted.all_gather.calls")
        dig(doc, "sequence_parallel.backward.verification.dW1.passed")
        expect(doc["sequence_parallel"]["boundary_activation_bytes"] * ranks ==
               schemes["megatron"]["boundary_activation_bytes"], "X, Y, dY, dX split T ways")


def case_backward_alone():
    check_whole_block(2, "--backward")


def case_bias_alone():
    check_whole_block(2, "--bias")


def case_sequence_parallel_alone():
    check_whole_block(2, "--sequence-parallel")


def case_whole_block_1_rank():
    check_whole_block(1, "--backward", "--bias", "--sequence-parallel")


def case_whole_block_2_ranks():
    check_whole_block(2, "--backward", "--bias", "--sequence-parallel")


def case_whole_block_4_ranks():
    check_whole_block(4, "--backward", "--bias", "--sequence-parallel")


def case_bf16_whole_block_1_rank():
    check_whole_block(1, "--dtype", "bf16", "--backward", "--bias", "--sequence-parallel")


def case_bf16_whole_block_2_ranks():
    check_whole_block(2, "--dtype", "bf16", "--backward", "--bias", "--sequence-parallel",
                      "--activation", "swiglu")


def case_bf16_whole_block_4_ranks():
    check_whole_block(4, "--dtype", "bf16", "--reduce-dtype", "fp32", "--backward", "--bias",
                      "--sequence-parallel")


def case_bf16_reduction_loses_digits():
    """Summing T partial sums in bf16 rounds at every addition; in fp32 once at the end. At
    T = 4 the bf16 reduction is measurably less accurate, and each passes its own bound."""
    errors = {}
    for reduce in ["fp32", "bf16"]:
        result, doc = report(4, 4, "--hidden-size", "256", "--dtype", "bf16", "--reduce-dtype", reduce,
                             "--scheme", "megatron", "--backward", *QUICK)
        v = doc["schemes"]["megatron"]["verification"]
        expect(v["passed"] is True, f"reduce {reduce}: verified against its own bound", result)
        expect(doc["config"]["reduce_dtype"] == reduce, "reduce dtype echoed")
        errors[reduce] = v["max_abs_diff"]
        print(f"reduce {reduce}: max |Y - reference| = {v['max_abs_diff']:.3e}, bound ratio {v['max_diff_over_bound']:.3f}")
    expect(errors["bf16"] > 1.3 * errors["fp32"],
           f"a bf16 reduction at T = 4 should lose digits: {errors}")


def check_overlap(ranks, chunks, *flags):
    """megatron-overlap is verified like every scheme and counted: `chunks` all-reduces forward,
    one of each chunk of Y, together moving megatron's bytes, as the formula says; with
    --backward one all-reduce of dX, its gradients verified."""
    result, doc = report(ranks, ranks, "--hidden-size", "64", "--overlap", "--overlap-chunks",
                         str(chunks), *flags, *QUICK)
    expect("Correct: True" in result.stdout, "verification passes", result)
    schemes = doc["schemes"]
    overlap, megatron = schemes["megatron-overlap"], schemes["megatron"]
    expect(overlap["verification"]["passed"] is True, "megatron-overlap verified")
    counted = overlap["forward"]["counted"]
    expect(counted["all_reduce"]["calls"] == chunks and counted["calls"] == chunks,
           f"{chunks} all-reduces forward: {counted}")
    expect(counted["bytes"] == megatron["forward"]["counted"]["bytes"], "megatron's bytes in all")
    expect(overlap["forward"]["matches_formula"] is True, "the forward matches its formula")
    expect(doc["overlap"]["chunks"] == chunks and doc["overlap"]["chosen_automatically"] is False,
           f"the choice echoed: {doc['overlap']}")
    expect(doc["config"]["overlap"] is True and doc["config"]["overlap_chunks"] == chunks,
           "config echoed")
    for key in ["hidden_fraction", "overlapped_bound_ms", "bound_ms", "compute_ms.median",
                "comm_ms.median"]:
        dig(overlap, key)
    expect(f"megatron-overlap: {chunks} token chunks (--overlap-chunks" in result.stdout,
           "BENCHMARK describes the chunks", result)
    if "--backward" not in flags:
        return
    back = overlap["backward"]
    expect(back["counted"]["all_reduce"] == megatron["backward"]["counted"]["all_reduce"] and
           back["counted"]["calls"] == 1, f"one all-reduce of dX: {back['counted']}")
    expect(back["matches_formula"] is True, "the backward matches its formula")
    expect(all(v["passed"] for v in back["verification"].values()),
           f"gradients verified: {back['verification']}")
    dig(back, "hidden_fraction")


def case_overlap_verified_and_counted():
    check_overlap(2, 4, "--backward", "--bias")
    # Uneven everywhere: 64 tokens in 5 chunks, F = 170 over 3 ranks.
    check_overlap(3, 5, "--backward", "--activation", "swiglu", "--ffn-hidden-size", "170")
    check_overlap(2, 3, "--dtype", "bf16", "--backward", "--bias")
    check_overlap(2, 2, "--dtype", "bf16", "--reduce-dtype", "fp32", "--sequence-parallel")


def case_overlap_says_when_nothing_to_gain():
    """Over shared memory a bare all-reduce of Y is a few percent of the compute at this size,
    and the cores that compute are the ones that copy: the automatic choice is one chunk, and
    the report says why rather than running slower."""
    result, doc = report(2, 2, "--hidden-size", "512", "--batch-size", "4", "--seq-len", "64",
                         "--scheme", "megatron", "--overlap", *QUICK)
    choice = doc["overlap"]
    expect(choice["chosen_automatically"] is True, f"chosen automatically: {choice}")
    if choice["worth_hiding"]:
        raise Skipped(f"this machine's all-reduce costs {choice['comm_share_of_megatron_forward']:.0%} "
                      "of the compute: no shared-memory run to check")
    expect(choice["chunks"] == 1, f"nothing to hide, one chunk: {choice}", result)
    expect("nothing worth hiding, so it runs as megatron does" in result.stdout, "says so", result)
    expect(doc["schemes"]["megatron-overlap"]["forward"]["counted"]["calls"] == 1, "one all-reduce")


def case_numpy_checks_bf16_tensors():
    """With --dtype bf16 every saved tensor holds bf16 values (as float32, exactly), and NumPy
    re-computes Y from them within what bf16 rounding of the activation and of Y allows."""
    with tempfile.TemporaryDirectory() as tmp:
        t = save_tensors(2, tmp, "--hidden-size", "64", "--dtype", "bf16", "--bias", "--backward",
                         "--batch-size", "2", "--seq-len", "8")
    for name, values in t.items():
        if name.startswith("d") and name not in ("dy", "dx"):
            continue  # weight gradients are accumulated and kept in fp32
        bits = values.astype(np.float32).view(np.uint32)
        expect(((bits & 0xFFFF) == 0).all(), f"{name}.npy holds values that are not bf16")
    x, a, c, act, y_ref = forward(t)
    ub = 2.0 ** -8
    w2 = np.abs(t["w2"].astype(np.float64))
    bound = y_bound(t, x, a, c, act) + 1.01 * (ub * np.abs(act) @ w2 + ub * np.abs(y_ref))
    diff = np.abs(t["y"].reshape(y_ref.shape) - y_ref)
    expect((diff <= bound).all(), f"y exceeds the bf16 bound by {(diff / bound).max():.2f}x")
    wrong = act @ (t["w2"].astype(np.float64) / 2) + t["b2"]
    expect((np.abs(t["y"].reshape(y_ref.shape) - wrong) > bound).any(), "W2/T must be caught in bf16 too")


def case_peak_measured_with_the_gemms_vectors():
    """The FMA peak (and every bound and % of peak against it) is measured with the vectors the
    GEMMs use: the CPU's widest, or AVX2's where oneDNN is held to them (ONEDNN_MAX_CPU_ISA, as
    bench/run.sh does to show an AVX2 machine's kernels): against AVX-512's peak, AVX2 kernels
    would look twice as far from their bound as they are."""
    flags = ["--hidden-size", "64", *QUICK]
    cpu = open("/proc/cpuinfo").read().split()
    widest = "AVX-512" if "avx512f" in cpu else "AVX2" if "avx2" in cpu and "fma" in cpu else "SSE"
    _, doc = report(1, 1, *flags, mpiexec=False)
    got = dig(doc, "machine.fma_peak_isa")
    expect(got == widest, f"peak measured with {got}, the CPU's widest being {widest}")
    if "oneDNN" not in dig(doc, "config.gemm_backend") or widest != "AVX-512":
        print(f"peak measured with {got}; no wider ISA to hold oneDNN back from here")
        return
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    try:
        _, held = report(1, 1, *flags, mpiexec=False)
    finally:
        del os.environ["ONEDNN_MAX_CPU_ISA"]
    got_held = dig(held, "machine.fma_peak_isa")
    expect(got_held == "AVX2", f"oneDNN held to AVX2: peak measured with {got_held}")
    print(f"peak measured with {got}, and with {got_held} where oneDNN is held to it: "
          f"{dig(doc, 'machine.fma_peak_gflops_per_core'):.0f} and "
          f"{dig(held, 'machine.fma_peak_gflops_per_core'):.0f} GFLOP/s")


def case_runs_without_mpiexec():
    result = run_ok(1, "--tp-size", "1", "--hidden-size", "32", *QUICK, mpiexec=False)
    expect("Correct: True" in result.stdout, "singleton run verifies", result)


# One launch per way the program refuses a command line before running (main.cpp's run()):
# (flags, text its one message must contain), at 2 ranks. Every bad command line of the corpus
# (106 of them: each flag's bad values, repeated and unknown flags, flags that need another, bad
# paths) is checked in-process, message by message, by tests/unit/test_config.cpp
# (Config.TheBadInputCorpusIsRefusedNamingTheFlag); a new refusal belongs there, and here only
# if it is refused in a new way.
REFUSAL_PATHS = [
    # CLI11's parse: every rank refuses, rank 0 prints CLI11's text, the exit status is CLI11's.
    (["--tp-size", "2", "--hidden-size", "010"], "--hidden-size: must be a whole number in 1..1048576, not '010'"),
    # validate(), against the launch: the rank count comes from MPI.
    (["--tp-size", "4"], "--tp-size 4 needs at least 4 MPI ranks, but this job has 2"),
    # The memory check, against this node's MemAvailable and the ranks MPI puts on it.
    (["--tp-size", "2", "--hidden-size", "1048576"], "of memory on this node"),
    # The output paths, which rank 0 alone checks: one rank objects, every rank leaves.
    (["--tp-size", "2", "--json", "/nonexistent-dir/report.json"], "--json /nonexistent-dir/report.json: cannot write there"),
]
# Rank 1 alone objects (given another command line than rank 0's, in an MPMD launch): the
# lowest objecting rank explains, not rank 0, and rank 0 leaves with it.
RANK_1_OBJECTS = (["--tp-size", "2", "--hidden-size", "1", "--scheme", "naive"],
                  "the naive scheme splits --hidden-size 1 over --tp-size 2 ranks")
# What mpirun adds after a non-zero exit (framed by lines of dashes), and CLI11's hint.
MPIRUN_NOTICE = re.compile(r"^-{60,}\n.*?^-{60,}\n", re.MULTILINE | re.DOTALL)
CLI11_HINT = "Run with --help for more information.\n"


def check_refusals(cases, run, status=None, one_line=False):
    """Each (flags, message): run(flags) must exit non-zero (with `status`, if given) within
    FAIL_FAST_SECONDS, without running, with `message` on stderr exactly once (and with
    `one_line`, nothing else there)."""
    failures = []
    for flags, message in cases:
        result = run(flags)
        problems = []
        if result.returncode == 0 or status not in (None, result.returncode):
            problems.append(f"exit code {result.returncode}")
        if one_line and len(result.stderr.splitlines()) != 1:
            problems.append("stderr should be one line")
        if result.seconds > FAIL_FAST_SECONDS:
            problems.append(f"took {result.seconds:.1f} s")
        if result.stderr.count(message) != 1:
            problems.append(f"stderr should hold {message!r} exactly once")
        if "CORRECTNESS VERIFICATION" in result.stdout:
            problems.append("it ran anyway")
        if problems:
            failures.append(f"{' '.join(flags)}: {', '.join(problems)}\n--- stderr\n{result.stderr}")
        else:
            print(f"ok  {' '.join(flags)}  ->  exit {result.returncode} in {result.seconds:.1f} s")
    expect(not failures, f"{len(failures)} bad inputs mishandled:\n" + "\n".join(failures))


def case_outputs_never_clobber():
    """What a path names is never harmed: a refused run leaves nothing, a link stays a link,
    a temporary-looking name of the user's is not touched, and '-' or a link to stdout is
    written in place."""
    with tempfile.TemporaryDirectory() as tmp:
        # A refused run (3 ranks' TP on 2) creates no directory and no file.
        nested, report_path = os.path.join(tmp, "a", "b"), os.path.join(tmp, "r.json")
        result = launch(2, "--tp-size", "3", "--save-tensors", nested, "--json", report_path)
        expect(result.returncode != 0, "a TP size larger than the job must be refused", result)
        expect(os.listdir(tmp) == [], f"a refused run left {os.listdir(tmp)}", result)

        # The old writer's probe truncated whatever r.json.tmp pointed to.
        precious = os.path.join(tmp, "v")
        with open(precious, "w") as f:
            f.write("precious\n")
        os.symlink(precious, report_path + ".tmp")
        user_file = os.path.join(tmp, "x.npy.tmp")
        with open(user_file, "w") as f:
            f.write("mine\n")
        # And a report written through a symlink replaces what it points to, not the link.
        target = os.path.join(tmp, "target.json")
        with open(target, "w") as f:
            f.write("old\n")
        link = os.path.join(tmp, "link.json")
        os.symlink(target, link)
        run_ok(2, "--tp-size", "2", "--hidden-size", "32", *QUICK, "--json", report_path,
               "--save-tensors", tmp)
        run_ok(2, "--tp-size", "2", "--hidden-size", "32", *QUICK, "--json", link)
        with open(precious) as f:
            expect(f.read() == "precious\n", "the file behind r.json.tmp was changed")
        expect(os.path.islink(report_path + ".tmp"), "the user's r.json.tmp link was removed")
        with open(user_file) as f:
            expect(f.read() == "mine\n", "a user's file named like a temporary was changed")
        expect(os.path.islink(link) and os.readlink(link) == target, "the link was replaced")
        with open(target) as f:
            expect(json.load(f)["verification"]["passed"] is True, "the link's target holds the report")
        leftovers = [n for n in os.listdir(tmp) if n.startswith(".")]
        expect(not leftovers, f"temporaries left behind: {leftovers}")

        # '-' and a link to /dev/stdout write the report into the output stream.
        stdout_link = os.path.join(tmp, "stdout.json")
        os.symlink("/dev/stdout", stdout_link)
        for where in ["-", stdout_link]:
            result = run_ok(1, "--tp-size", "1", "--hidden-size", "16", *QUICK, "--json", where)
            expect('"schema_version"' in result.stdout, f"--json {where}: no report on stdout", result)
        expect(os.path.islink(stdout_link), "the link to /dev/stdout was replaced")
    expect(os.path.islink("/dev/stdout"), "/dev/stdout is no longer a symbolic link")

    # A closed standard output: MPI would reuse descriptor 1 for one of its own, where the report
    # would fail after the run. '-' is refused before it.
    check_refusals([(["--json", "-"], "--json -: cannot write there (standard output is closed)")],
                   lambda flags: timed_run(["sh", "-c", 'exec "$@" >&-', "sh", ARGS.binary,
                                            "--tp-size", "1", "--hidden-size", "16", *QUICK, *flags]),
                   status=EXIT_BAD_INPUT, one_line=True)


EXIT_VERIFICATION_FAILED = 4  # include/tp_mlp/exit_codes.hpp
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 6


def case_planted_faults_fail_verification():
    """Every classic mistake, planted in a real run, fails verification with exit code 4: a
    code that mpirun never uses for its own failures or signals (1, 128 + n)."""
    faults = {"missing-partial-sum": [], "duplicate-shard": [], "bias-on-every-rank": ["--bias"],
              "w2-over-t": [], "gate-up-split": ["--activation", "swiglu"]}
    for fault, flags in faults.items():
        result = launch(2, "--tp-size", "2", "--hidden-size", "64", "--plant-fault", fault, *flags, *QUICK)
        expect(result.returncode == EXIT_VERIFICATION_FAILED,
               f"{fault}: expected exit {EXIT_VERIFICATION_FAILED}, got {result.returncode}", result)
        megatron_failed = re.search(r"^  megatron +Y .*False$", result.stdout, re.MULTILINE)
        expect("Correct: False" in result.stdout and megatron_failed, f"{fault} caught in megatron", result)
        print(f"{fault}: caught, exit {result.returncode}")
    result = run_ok(2, "--tp-size", "2", "--hidden-size", "64", "--plant-fault", "none", *QUICK)
    expect("Correct: True" in result.stdout, "no fault, no failure", result)


# --block attention: query heads dealt out in contiguous blocks differing by at most one, KV head
# q*K//N for query head q; worked out here independently of head_sharding.cpp.
def head_blocks(heads, kv_heads, ranks):
    """Each rank's (query first, count, kv first, count), and the KV heads several ranks hold."""
    shards, holders = [], {}
    for r in range(ranks):
        count = heads // ranks + (1 if r < heads % ranks else 0)
        first = r * (heads // ranks) + min(r, heads % ranks)
        kvs = sorted({q * kv_heads // heads for q in range(first, first + count)})
        shards.append((first, count, kvs[0] if kvs else 0, len(kvs)))
        for kv in kvs:
            holders.setdefault(kv, []).append(r)
    return shards, sorted(kv for kv, held in holders.items() if len(held) > 1)


def verified_heads(ranks, heads, kv_heads, hidden, batch, seq, *flags):
    """A run of N heads and K KV heads at T = ranks that verifies: its report, a name for it,
    and megatron's gradients' verdicts (empty without --backward)."""
    result, doc = report(ranks, ranks, "--hidden-size", str(hidden), "--num-heads", str(heads),
                         "--num-kv-heads", str(kv_heads), "-b", str(batch), "-s", str(seq), *flags, *QUICK)
    what = f"T={ranks} N={heads} K={kv_heads} {' '.join(flags)}"
    expect("Correct: True" in result.stdout and dig(doc, "verification.passed") is True,
           f"{what}: verified", result)
    gradients = dig(doc, "schemes.megatron.backward.verification") if "--backward" in flags else {}
    return doc, what, gradients


def check_attention(ranks, heads, kv_heads, *flags, hidden=128):
    """One verified run of the attention block: every tensor within its bound, the heads where
    they belong, and the collectives counted equal to the formulas."""
    backward, bias = "--backward" in flags, "--bias" in flags
    batch, seq = 2, 16
    doc, what, gradients = verified_heads(ranks, heads, kv_heads, hidden, batch, seq,
                                          "--block", "attention", *flags)
    expected = {"dX", "dWq", "dWk", "dWv", "dWo"} | ({"dbq", "dbk", "dbv", "dbo"} if bias else set())
    expect(set(gradients) == (expected if backward else set()), f"{what}: gradients {sorted(gradients)}")
    expect(all(g["passed"] for g in gradients.values()), f"{what}: every gradient passes")
    shards, replicated = head_blocks(heads, kv_heads, ranks)
    a = dig(doc, "attention")
    got = [(r["query_heads"]["first"], r["query_heads"]["count"], r["kv_heads"]["first"],
            r["kv_heads"]["count"]) for r in a["ranks"]]
    expect(got == shards, f"{what}: heads {got}, expected {shards}")
    expect(a["replicated_kv_heads"] == replicated, f"{what}: replicated {a['replicated_kv_heads']}, expected {replicated}")
    d = hidden // heads
    dtype = flags[flags.index("--dtype") + 1] if "--dtype" in flags else "fp32"
    reduce = flags[flags.index("--reduce-dtype") + 1] if "--reduce-dtype" in flags else dtype
    y_bytes = batch * seq * hidden * (2 if reduce == "bf16" else 4)  # Y's sum in the reduce dtype
    replica_bytes = (hidden + (1 if bias else 0)) * 2 * len(replicated) * d * 4
    c = a["communication"]
    # Y's all-reduce forward, dX's backward (a group of one counts its own), and the replicas'.
    expect(c["forward_counted_calls"] == 1 and c["forward_counted_bytes"] == y_bytes,
           f"{what}: forward counted {c}, expected 1 call, {y_bytes} bytes")
    if backward:
        calls = 1 + (1 if replicated else 0)
        nbytes = y_bytes + replica_bytes
        expect(c["backward_counted_calls"] == calls and c["backward_counted_bytes"] == nbytes,
               f"{what}: backward counted {c}, expected {calls} calls, {nbytes} bytes")
    expect(c["replica_grad_allreduce_bytes_formula"] == replica_bytes, f"{what}: replica formula {c}")
    expect(c["matches_formula"] is True, f"{what}: counted = formula")
    print(f"{what}: verified; replicated KV heads {replicated}; counted {c}")


def case_attention_1_and_2_ranks():
    check_attention(1, 4, 2, "--backward", "--bias")
    check_attention(2, 4, 4, "--backward")           # multi-head, 2 heads each
    check_attention(2, 2, 1, "--backward", "--bias")  # K < T: KV head 0 on both ranks
    check_attention(2, 6, 3, "--backward", hidden=96)  # GQA, a group straddling the ranks
    check_attention(2, 1, 1)                         # N < T: rank 1 holds no head
    check_attention(2, 6, 3, "--backward", "--bias", "--dtype", "bf16", hidden=96)  # bf16, Y in bf16


def case_attention_3_ranks():
    check_attention(3, 4, 2, "--backward", "--bias")  # 2, 1, 1 heads; KV head 1 on ranks 1-2
    check_attention(3, 6, 6, "--backward", hidden=96)  # divisible, no replica
    check_attention(3, 4, 1, "--backward", "--dtype", "bf16", "--reduce-dtype", "fp32",
                    "--sequence-parallel")  # bf16, one KV head on all three, 32 tokens over 3


def case_attention_4_ranks():
    check_attention(4, 8, 1, "--backward", "--bias")  # K = 1: one KV head on every rank
    check_attention(4, 8, 2, "--backward")            # K = 2 < T: each KV head on two ranks
    check_attention(4, 6, 3, "--backward", "--bias", hidden=96)  # K between: 2, 2, 1, 1 heads
    check_attention(4, 2, 2, "--backward", "--bias")  # N < T: ranks 2 and 3 hold none


def expect_caught(ranks, flags, fault, scheme, tensor):
    """`fault` planted in a run of `flags` fails verification with exit 4, in `scheme`'s `tensor`."""
    result = launch(ranks, *flags, "--plant-fault", fault)
    expect(result.returncode == EXIT_VERIFICATION_FAILED,
           f"{fault}: expected exit {EXIT_VERIFICATION_FAILED}, got {result.returncode}", result)
    caught = re.search(rf"^  {scheme} +{tensor} .*False$", result.stdout, re.MULTILINE)
    expect("Correct: False" in result.stdout and caught, f"{fault} caught in {scheme}'s {tensor}", result)
    print(f"{fault}: caught in {scheme}'s {tensor}, exit {result.returncode}")


def case_attention_faults_fail_verification():
    """Both head-sharding mistakes, planted, fail verification with exit 4, in the tensor they
    spoil: a replicated KV head's unsummed gradients in dWk and dWv, a wrong KV head in Y."""
    base = ["--tp-size", "2", "--block", "attention", "-b", "2", *QUICK]
    small = ["--hidden-size", "64", "-s", "8"]
    for fault, flags, tensor in [("kv-grad-not-summed", [*small, "--num-heads", "2", "--num-kv-heads", "1", "--backward"], "dWk"),
                                 # bf16's cap is 32 times fp32's: still far below the mistake
                                 ("kv-grad-not-summed", [*small, "--num-heads", "2", "--num-kv-heads", "1", "--backward",
                                                         "--dtype", "bf16"], "dWk"),
                                 ("wrong-kv-head", [*small, "--num-heads", "4", "--num-kv-heads", "2"], "Y"),
                                 # where the worst-case bound alone exceeds max|Y|: the cap decides
                                 ("wrong-kv-head", ["--hidden-size", "1024", "-s", "64", "--num-heads", "8",
                                                    "--num-kv-heads", "2"], "Y")]:
        expect_caught(2, [*base, *flags], fault, "megatron", tensor)


# --block layer: both blocks with norms and residuals; the heads as the attention block's.
def check_layer(ranks, heads, kv_heads, *flags, hidden=96):
    """One verified run of the layer: every tensor, the norms' included, within its bound; two
    all-reduces of [tokens, H] each way and the KV replicas' sum, counted equal to the formulas."""
    backward, bias = "--backward" in flags, "--bias" in flags
    swiglu, rms = "swiglu" in flags, "rmsnorm" in flags or ("swiglu" in flags and "layernorm" not in flags)
    batch, seq = 2, 8
    doc, what, gradients = verified_heads(ranks, heads, kv_heads, hidden, batch, seq,
                                          "--block", "layer", *flags)
    expected = {"dX", "dWq", "dWk", "dWv", "dWo", "dW1", "dW2", "dnorm1_w", "dnorm2_w"}
    expected |= {"dW3"} if swiglu else set()
    expected |= set() if rms else {"dnorm1_b", "dnorm2_b"}
    expected |= ({"dbq", "dbk", "dbv", "dbo", "db1", "db2"} | ({"db3"} if swiglu else set())) if bias else set()
    expected = {"dX"} if "bf16" in flags else expected  # bf16's weights: block by block only
    expect(set(gradients) == (expected if backward else set()), f"{what}: gradients {sorted(gradients)}")
    expect(all(g["passed"] for g in gradients.values()), f"{what}: every gradient passes")
    # Block by block: each block's output, and backward its dX and weights' gradients.
    blocks = dig(doc, "schemes.megatron.block_verification")
    expected = {"norm1.y", "attn.Y", "norm2.y", "mlp.Y"}
    expected |= {"norm1.dw", "attn.dX", "attn.dWk", "norm2.dw", "mlp.dX", "mlp.dW2"} if backward else set()
    expect(expected <= set(blocks) and all(b["passed"] for b in blocks.values()),
           f"{what}: block by block {sorted(blocks)}")
    shards, replicated = head_blocks(heads, kv_heads, ranks)
    # Y and dX are summed in the reduce dtype: bf16's by default in a bf16 model.
    y_bytes = batch * seq * hidden * (2 if "bf16" in flags and "--reduce-dtype" not in flags else 4)
    replica_bytes = (hidden + (1 if bias else 0)) * 2 * len(replicated) * (hidden // heads) * 4
    c = dig(doc, "attention.communication")
    expect(c["y_allreduces_per_pass"] == 2 and c["forward_counted_calls"] == 2
           and c["forward_counted_bytes"] == 2 * y_bytes, f"{what}: forward counted {c}")
    if backward:
        calls = 2 + (1 if replicated else 0)
        expect(c["backward_counted_calls"] == calls and c["backward_counted_bytes"] == 2 * y_bytes + replica_bytes,
               f"{what}: backward counted {c}, expected {calls} calls")
    expect(c["matches_formula"] is True, f"{what}: counted = formula")
    if "--sequence-parallel" in flags:
        # Each block enters through an all-gather and leaves through a reduce-scatter; backward
        # the replicas' and the norms' gradients are all-reduced: 2 (LayerNorm: 4) x H floats.
        sp = dig(doc, "schemes.megatron-sp")
        norms = (2 if rms else 4) * hidden * 4
        passes = [("forward", [])] + ([("backward", [replica_bytes, norms])] if backward else [])
        for direction, reduced in passes:
            k = sp[direction]["counted"]
            got = (k["all_gather"]["calls"], k["reduce_scatter"]["calls"], k["all_reduce"]["calls"],
                   k["all_reduce"]["bytes"])
            want = (2, 2, len([b for b in reduced if b]), sum(reduced))
            expect(got == want, f"{what}: megatron-sp {direction} counted {got}, expected {want}")
    print(f"{what}: verified; replicated KV heads {replicated}; counted {c}")
    return doc


def case_layer_1_and_2_ranks():
    check_layer(1, 4, 2, "--backward", "--bias", "--activation", "swiglu")
    check_layer(2, 2, 1, "--backward", "--bias")                        # K < T, GeLU and LayerNorm
    check_layer(2, 6, 3, "--backward", "--activation", "swiglu", "--norm", "layernorm")  # a group straddles
    check_layer(2, 2, 1, "--backward", "--bias", "--sequence-parallel")  # the norms' gradients summed
    check_layer(2, 6, 3, "--backward", "--bias", "--dtype", "bf16", "--sequence-parallel")  # bf16 blocks
    # A preset's shapes, at a few tokens: GPT-2 small's H, F, heads and norm.
    result, doc = report(2, 2, "--block", "layer", "--model", "gpt2", "-b", "1", "-s", "8",
                         "--scheme", "megatron", *QUICK)
    got = {k: dig(doc, f"config.{k}") for k in ["hidden_size", "ffn_hidden_size", "num_heads", "num_kv_heads", "norm", "activation"]}
    expect(got == {"hidden_size": 768, "ffn_hidden_size": 3072, "num_heads": 12, "num_kv_heads": 12,
                   "norm": "layernorm", "activation": "gelu"}, f"--model gpt2 gave {got}", result)
    expect(dig(doc, "verification.passed") is True, "--model gpt2 verified", result)


def case_layer_overlap_chunks_its_mlp():
    """megatron-overlap of the layer: verified, its MLP's forward all-reduce in 3 uneven token
    chunks and attention's whole (1 + 3 calls, 2 x tokens x H x 4 bytes in all), the backward
    as megatron's, every pass counted equal to its formula."""
    hidden, tokens, chunks = 64, 2 * 13, 3
    result, doc = report(2, 2, "--block", "layer", "--hidden-size", str(hidden), "--num-heads", "4",
                         "--num-kv-heads", "1", "-b", "2", "-s", "13", "--backward", "--overlap",
                         "--overlap-chunks", str(chunks), "--scheme", "megatron", *QUICK)
    expect("Correct: True" in result.stdout, "the overlapped layer verifies", result)
    s = dig(doc, "schemes.megatron-overlap")
    forward, backward = s["forward"]["counted"], s["backward"]["counted"]
    megatron = dig(doc, "schemes.megatron.backward.counted")
    expect(forward["all_reduce"] == {"calls": 1 + chunks, "bytes": 2 * tokens * hidden * 4},
           f"forward: attention's all-reduce and the MLP's {chunks} chunks: {forward}")
    expect(backward["all_reduce"] == megatron["all_reduce"], f"backward as megatron's: {backward}")
    expect("attention's stays whole" in result.stdout, "the report says what attention does", result)


def case_layer_3_and_4_ranks():
    check_layer(3, 4, 2, "--backward", "--bias", "--activation", "swiglu")  # 2, 1, 1 heads; F uneven
    check_layer(4, 8, 2, "--backward", hidden=128)                         # K < T: each KV head on two
    check_layer(4, 6, 3, "--backward", "--bias")                           # 2, 2, 1, 1 heads
    check_layer(3, 4, 2, "--backward", "--activation", "swiglu", "--sequence-parallel")  # 16 tokens over 3
    check_layer(3, 3, 1, "--backward", "--activation", "swiglu", "--dtype", "bf16")  # one KV head on all
    check_layer(4, 2, 2, "--backward", "--activation", "swiglu")           # N < T: ranks 2, 3 hold none


def case_layer_faults_fail_verification():
    """The layer's two gradient pitfalls, planted, fail with exit 4 where they belong: unsummed
    KV replicas in dWk, the norms' unsummed gradients under sequence parallelism in dnorm1_w.
    (Every other fault is planted in the layer in-process: LayerVerification in
    test_verification.cpp.)"""
    base = ["--tp-size", "2", "--block", "layer", "--hidden-size", "64", "-b", "2", "-s", "8", *QUICK]
    for fault, flags, tensor in [("kv-grad-not-summed", ["--num-heads", "2", "--num-kv-heads", "1", "--backward"], "dWk"),
                                 ("norm-grad-not-summed", ["--num-heads", "4", "--backward", "--sequence-parallel"], "dnorm1_w")]:
        expect_caught(2, [*base, *flags], fault,
                      "megatron-sp" if fault == "norm-grad-not-summed" else "megatron", tensor)


def case_stopped_rank_times_out():
    """A rank that stops responding must not leave the others waiting forever: the job ends
    after --timeout with one message naming the collective, and exit code 6."""
    timeout = 3
    code, stderr, _, _ = signal_a_rank_mid_benchmark(signal.SIGSTOP, timeout + FAIL_FAST_SECONDS,
                                                     "--timeout", str(timeout))
    expect(code == EXIT_TIMEOUT, f"expected exit {EXIT_TIMEOUT}, got {code}:\n{stderr}")
    expect(stderr.count("no progress for") == 1 and "in an all-reduce of 65536 bytes" in stderr,
           f"one message naming the all-reduce:\n{stderr}")


def case_rank_stopped_at_the_end_times_out():
    """--timeout covers every MPI call, the finalisation included: a rank stopped after its
    last collective ends the job with exit 6, not a wait forever. Rank 0 writes its report into
    a FIFO, where it waits for this test to read it: rank 1 is stopped meanwhile, so rank 0
    reaches MPI_Finalize only after rank 1 can no longer finish it."""
    timeout = 2
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "report.json")
        os.mkfifo(fifo)
        cmd = [*mpiexec_prefix(2), ARGS.binary, "--tp-size", "2", "--hidden-size", "64",
               "--scheme", "megatron", *QUICK, "--timeout", str(timeout), "--json", fifo]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        ranks = []
        try:
            wait_for_output(proc, "resident memory", 60)  # rank 0's last line; next, the report
            ranks = program_ranks(proc.pid)
            expect(len(ranks) == 2, f"expected 2 rank processes under mpiexec, found {ranks}")
            os.kill(ranks[-1], signal.SIGSTOP)
            with open(fifo) as report:  # lets rank 0 write it, and go on to MPI_Finalize
                json.load(report)
            try:
                code = proc.wait(timeout=timeout + FAIL_FAST_SECONDS)
            except subprocess.TimeoutExpired:
                raise AssertionError("the job still waits in MPI_Finalize for the stopped rank")
            stderr = proc.stderr.read().decode()
        finally:
            kill_job(proc, ranks)
    # Stopped while it waits at the last barrier, or once past it: either wait is watched.
    expect(code == EXIT_TIMEOUT, f"expected exit {EXIT_TIMEOUT}, got {code}:\n{stderr}")
    expect(stderr.count("no progress for") == 1 and re.search(r"in (a barrier|the finalisation)", stderr),
           f"one message naming the last barrier or the finalisation:\n{stderr}")


def case_smallest_shapes_run():
    """Every shape the program can plan runs, empty GEMM blocks included: H = 1, fewer FFN
    columns per rank than the backward's blocks, one token per rank, in every scheme and dtype."""
    tiny = ["--iterations", "1", "--warmup", "0"]
    runs = [
        (1, ["-t", "1", "-H", "1", "--ffn-hidden-size", "3", "-b", "1", "-s", "4", "--scheme",
             "megatron", "--overlap", "--overlap-chunks", "2", "--backward"]),
        (2, ["-t", "2", "-H", "1", "-b", "1", "-s", "2", "--scheme", "megatron", "--overlap",
             "--overlap-chunks", "2", "--backward", "--bias", "--sequence-parallel"]),
        (2, ["-t", "2", "-H", "1", "-b", "1", "-s", "2", "--scheme", "megatron", "--overlap",
             "--overlap-chunks", "2", "--backward", "--sequence-parallel", "--dtype", "bf16",
             "--activation", "swiglu", "--ffn-hidden-size", "3"]),
        (2, ["-t", "2", "-H", "2", "-b", "1", "-s", "1", "--backward", "--bias"]),
    ]
    for ranks, flags in runs:
        result = run_ok(ranks, *flags, *tiny)
        expect("Correct: True" in result.stdout, "verified", result)
        print(f"ok  -np {ranks} {' '.join(flags)}")


def invariant_digests(flags, tp_sizes=(1, 2, 3, 4), binary=None, mpiexec=None):
    """{T: {scheme: {tensor: digest}}} of one configuration run at each TP size (as many ranks),
    after checking that every scheme verified and every copy of every tensor matched."""
    runs = {}
    for tp in tp_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "report.json")
            cmd = [*mpiexec_prefix(tp)] if mpiexec is None else [*mpiexec, ARGS.np_flag, str(tp)]
            result = timed_run([*cmd, binary or ARGS.binary, "--tp-size", str(tp), "--invariant",
                                *flags, *QUICK, "--json", path])
            expect(result.returncode == 0, f"expected exit 0, got {result.returncode}", result)
            with open(path) as f:
                doc = json.load(f)
        counted_as_formulas(doc, result)
        blocking, config = doc["invariant"], doc["config"]
        if config["block"] == "attention":
            expect(config["invariant"] and blocking["unit"] == "head", f"T={tp}: heads", result)
        else:
            expect(config["invariant"] and blocking["unit"] == ("layer" if config["block"] == "layer" else "ffn_block")
                   and blocking["padded_tokens"] % blocking["row_tile"] == 0
                   and blocking["padded_tokens"] >= config["batch_size"] * config["seq_len"]
                   and blocking["blocks"] * blocking["block_width"] >= config["ffn_hidden_size"],
                   f"T={tp}: the blocking reported, and whole: {blocking}", result)
        for name, s in doc["schemes"].items():
            expect(s["verification"]["passed"] and s["digests_copies_match"],
                   f"T={tp} {name}: verified, and every copy alike", result)
        runs[tp] = {name: s["digests"] for name, s in doc["schemes"].items()}
    return runs


INVARIANT_CONFIGS = [
    # GeLU, F = 128 in 8 blocks of 16, 10 tokens, everything on.
    ["--hidden-size", "32", "--batch-size", "2", "--seq-len", "5", "--backward", "--bias",
     "--sequence-parallel", "--overlap", "--overlap-chunks", "3"],
    # SwiGLU at F = 170 (blocks of 16 and a tail of 10: uneven at every T), bf16, 75 tokens (tiles
    # of 64 rows, padded), chunks that cut a tile.
    ["--hidden-size", "48", "--batch-size", "3", "--seq-len", "25", "--activation", "swiglu",
     "--ffn-hidden-size", "170", "--backward", "--bias", "--overlap", "--overlap-chunks", "2",
     "--dtype", "bf16"],
]


# The attention block and the layer (their own case: the MLP's above are the sample's int64
# collectives, and the blocks' code runs under the sanitizers in process).
INVARIANT_HEAD_CONFIGS = [
    # The attention block: 6 query heads and 2 KV heads, uneven from T = 4 on, KV head 0
    # replicated at T = 3 and 4 (its dK and dV summed over ranks), sequence parallelism.
    ["--block", "attention", "--hidden-size", "48", "--num-heads", "6", "--num-kv-heads", "2",
     "--batch-size", "2", "--seq-len", "5", "--backward", "--bias", "--sequence-parallel"],
    # Two query heads and one KV head, bf16 with biases: from T = 3 on, ranks with no head.
    ["--block", "attention", "--hidden-size", "64", "--num-heads", "2", "--num-kv-heads", "1",
     "--batch-size", "1", "--seq-len", "9", "--backward", "--bias", "--dtype", "bf16"],
    # The whole layer (its norms' gradients included): GeLU and LayerNorm with biases, the MLP's
    # forward in 2 chunks (megatron-overlap-inv); SwiGLU and RMSNorm in bf16 at F = 170, one KV
    # head on every rank.
    ["--block", "layer", "--hidden-size", "48", "--num-heads", "6", "--num-kv-heads", "2",
     "--activation", "gelu", "--batch-size", "2", "--seq-len", "5", "--backward", "--bias",
     "--overlap", "--overlap-chunks", "2"],
    ["--block", "layer", "--hidden-size", "64", "--num-heads", "4", "--num-kv-heads", "1",
     "--activation", "swiglu", "--ffn-hidden-size", "170", "--batch-size", "1", "--seq-len", "9",
     "--backward", "--dtype", "bf16"],
]


def same_bits_at_every_tp_size(configs):
    """Every invariant scheme of each configuration gives one set of bits at T = 1...4; the plain
    megatron scheme's differ between T in at least one, so the test proves something."""
    plain_differs = False
    for flags in configs:
        runs = invariant_digests(flags)
        reference = runs[1]["megatron-inv"]
        for tp, schemes in runs.items():
            for name, digests in schemes.items():
                if name.endswith("-inv"):
                    expect(digests == reference, f"T={tp} {name}: {digests} != T=1 megatron-inv's {reference}")
        plain_differs = plain_differs or len({json.dumps(r["megatron"], sort_keys=True) for r in runs.values()}) > 1
        print(f"ok  {' '.join(flags)}: {len(runs)} TP sizes, one set of bits: Y {reference['Y']}")
    expect(plain_differs, "the plain megatron scheme should differ between TP sizes somewhere")


def case_invariant_same_bits_at_every_tp_size():
    """--invariant: Y and every gradient have the same bits at T = 1, 2, 3 and 4 in every
    invariant scheme (and each the same as the others'), uneven shards, chunks and bf16
    included."""
    same_bits_at_every_tp_size(INVARIANT_CONFIGS)


def case_invariant_heads_same_bits_at_every_tp_size():
    """The same for the attention block and the whole layer: uneven heads, replicated KV heads,
    sequence parallelism, the layer's norms and its MLP's chunks, fp32 and bf16."""
    same_bits_at_every_tp_size(INVARIANT_HEAD_CONFIGS)


def case_invariant_one_ulp_changes_the_digest():
    """A one-ulp change in one block's (one head's) partial sum passes verification (it is
    within every bound) and still changes megatron-inv's digest of Y: the bits show what a bound
    cannot. In the MLP block, the attention block and the layer (its MLP's)."""
    for flags in (INVARIANT_CONFIGS[0][:6], INVARIANT_HEAD_CONFIGS[0][:12],
                  INVARIANT_HEAD_CONFIGS[2][:14]):
        clean = invariant_digests(flags, tp_sizes=(2,))[2]
        planted = invariant_digests([*flags, "--plant-fault", "one-ulp"], tp_sizes=(2,))[2]
        expect(planted["megatron-inv"]["Y"] != clean["megatron-inv"]["Y"], "the planted ulp changes Y's digest")
        expect(planted["megatron"] == clean["megatron"], "and nothing in the plain scheme")
        print(f"{' '.join(flags)}: Y's digest {clean['megatron-inv']['Y']} -> {planted['megatron-inv']['Y']}")


def case_invariant_same_bits_under_both_mpis():
    """The same --invariant run under Open MPI (the release build) and under MPICH (this
    build) gives the same digests: the exact sum does not depend on the MPI's algorithms."""
    other = os.environ.get("TP_MLP_OPEN_MPI_BINARY", "")
    if not os.access(other, os.X_OK):
        raise Skipped(f"no Open MPI build to compare with ({other or 'TP_MLP_OPEN_MPI_BINARY unset'})")
    flags = INVARIANT_CONFIGS[0]
    mpich = invariant_digests(flags, tp_sizes=(3,))[3]
    os.environ.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")  # containers
    openmpi = invariant_digests(flags, tp_sizes=(3,), binary=other,
                                mpiexec=["mpirun.openmpi", "--oversubscribe", "--allow-run-as-root"])[3]
    for name in mpich:
        if name.endswith("-inv"):
            expect(mpich[name] == openmpi[name], f"{name}: MPICH {mpich[name]} != Open MPI {openmpi[name]}")
    print(f"ok  Y {mpich['megatron-inv']['Y']} under both")


def case_wrong_launcher_says_so():
    """Another MPI's launcher makes every process a world of one, each of which would run the
    whole job and write the same files: the program must refuse, once, naming the cause."""
    if "mpich" in os.path.basename(ARGS.mpiexec):
        other = [shutil.which("mpirun.openmpi") or "", "--oversubscribe", "--allow-run-as-root"]
    else:
        other = [shutil.which("mpiexec.mpich") or ""]
    if not other[0]:
        raise Skipped("the other MPI's launcher is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "r.json")
        cmd = [*other, "-n", "2", ARGS.binary, "--tp-size", "2", "--json", report_path, *QUICK]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
        result.cmd = " ".join(cmd)
        expect(result.returncode != 0, "a mismatched launcher must not exit 0", result)
        expect(result.stderr.count("but each is an MPI world of 1") == 1,
               "exactly one message names the cause", result)
        expect("CORRECTNESS VERIFICATION" not in result.stdout, "it ran anyway", result)
        expect(not os.path.exists(report_path), "a refused run wrote its report")


def case_bad_input_fails_fast():
    """Each way of refusing, launched: non-zero within seconds, and one message on stderr (one
    line, beside mpirun's own notice of the exit status), naming the flag."""
    def program_says(result):
        result.stderr = MPIRUN_NOTICE.sub("", result.stderr).replace(CLI11_HINT, "")
        return result

    check_refusals(REFUSAL_PATHS, lambda flags: program_says(launch(2, *flags)), one_line=True)
    mpmd = lambda flags: [*mpiexec_prefix(1), ARGS.binary, "--tp-size", "2", ":", ARGS.np_flag, "1",
                          ARGS.binary, *flags]
    check_refusals([RANK_1_OBJECTS], lambda flags: program_says(timed_run(mpmd(flags))), one_line=True)


class Skipped(Exception):
    """Raised by a case that cannot run on this machine (not a failure of the program)."""


# scripts/two_hosts.sh makes two "hosts" of this machine (network namespaces joined by a veth
# pair), runs one rank on each over TCP, and removes them again; these cases run it with this build.
TWO_HOSTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "two_hosts.sh")
TWO_HOSTS_TIMEOUT = 45  # seconds for one run of the script; ctest allows a case 90
USAGE_ERROR = 64        # the script's exit status for a bad command line
IP_TIMEOUT = 5          # seconds for one `ip` command

# Wraps each rank: writes down its namespace, its process id and the qdiscs it sees, then
# becomes the program.
RECORDER_SCRIPT = """#!/bin/sh
{{ ip netns identify; echo $$; tc qdisc show; }} >{directory}/rank.$OMPI_COMM_WORLD_RANK 2>/dev/null
exec {binary} "$@"
"""


def ip(*args):
    """What one `ip` command printed, bounded in time."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT).stdout


class TwoHosts:
    """One run of the script, started at once: this build's launcher and flags, each rank
    wrapped by the recorder, the script's temporary files in a directory of their own
    (TMPDIR) that must be empty again afterwards. Leaving the `with` block stops the script
    with SIGTERM if it still runs, so that it removes the hosts itself."""

    def __init__(self, tmp, *args, prefix=()):
        self.tmp, self.scratch = tmp, os.path.join(tmp, "scratch")
        os.mkdir(self.scratch)
        recorder = os.path.join(tmp, "recorder")
        with open(recorder, "w") as f:
            f.write(RECORDER_SCRIPT.format(directory=shlex.quote(tmp), binary=shlex.quote(ARGS.binary)))
        os.chmod(recorder, 0o755)
        self.cmd = [*prefix, TWO_HOSTS, "--binary", recorder, "--mpiexec", ARGS.mpiexec,
                    "--mpiexec-flags", ARGS.preflags, *args]
        self.start = time.monotonic()
        # SIGINT as in a terminal, even where this process inherited it ignored.
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "TMPDIR": self.scratch},
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        pid = self.proc.pid  # the script's (a prefix execs it): it names everything after it
        self.namespaces = [f"tp_mlp_a_{pid}", f"tp_mlp_b_{pid}"]
        self.veth = f"tpmlp{pid}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=FAIL_FAST_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()

    def finish(self, timeout=TWO_HOSTS_TIMEOUT):
        out, err = self.proc.communicate(timeout=timeout)
        result = subprocess.CompletedProcess(self.cmd, self.proc.returncode, out.decode(), err.decode())
        result.cmd, result.seconds = " ".join(self.cmd), time.monotonic() - self.start
        return result

    def ranks(self):
        """{rank: (namespace, pid, qdiscs)}, as each rank that started recorded them."""
        recorded = {}
        for rank in range(2):
            path = os.path.join(self.tmp, f"rank.{rank}")
            if os.path.exists(path):
                with open(path) as f:
                    namespace, pid, qdiscs = f.read().split("\n", 2)
                recorded[rank] = (namespace, int(pid), qdiscs)
        return recorded

    def left_behind(self):
        """Whatever of this run is still here: namespaces, the veth, temporary files, ranks."""
        listed = ip("netns", "list") + ip("-o", "link") if shutil.which("ip") else ""
        found = [name for name in [*self.namespaces, self.veth] if re.search(rf"\b{name}\b", listed)]
        found += [os.path.join(self.scratch, f) for f in os.listdir(self.scratch)]
        found += [f"rank {rank} (pid {pid})" for rank, (_, pid, _) in self.ranks().items() if alive(pid)]
        return found


def skip_if_cannot_run(result):
    """The script's "cannot run here" (not root, no CAP_NET_ADMIN, no iproute2) is a skip."""
    if result.returncode == SKIPPED:
        raise Skipped(result.stderr.strip())


def case_two_hosts_in_network_namespaces():
    # A multi-host run on one machine: rank 0 on host A, rank 1 on host B, each in its own
    # network namespace, with MPI traffic and Open MPI's own control channel forced onto TCP
    # over the veth pair between them, the only path there is from one host to the other.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.json")
        with TwoHosts(tmp, "--", "--hidden-size", "64", *QUICK, "--scheme", "megatron", "--json", path) as run:
            result = run.finish()
        skip_if_cannot_run(result)
        expect(result.returncode == 0, f"expected exit 0, got {result.returncode}", result)
        expect("Correct: True" in result.stdout, "verification should pass", result)
        with open(path) as f:
            doc = json.load(f)
        ran_in = {rank: namespace for rank, (namespace, _, _) in run.ranks().items()}
        left = run.left_behind()
    # The script adds --tp-size 2 when not given one.
    expect(dig(doc, "config.world_size") == 2 and dig(doc, "config.tp_size") == 2, "2 ranks, TP 2")
    expect(dig(doc, "verification.passed") is True, "JSON verification passed")
    expect(ran_in == dict(enumerate(run.namespaces)), f"rank 0 belongs in {run.namespaces[0]} and "
           f"rank 1 in {run.namespaces[1]}; they ran in {ran_in}", result)
    expect(not left, f"left behind: {left}", result)
    print(f"ranks ran in {ran_in}; the job took {result.seconds:.1f} s")


def case_two_hosts_shaped_link():
    # --gbit 1: each host sees its end of the link under a 1 Gbit/s tbf, and all of it goes.
    with tempfile.TemporaryDirectory() as tmp:
        with TwoHosts(tmp, "--gbit", "1", "--", "--hidden-size", "256", *QUICK, "--scheme", "megatron") as run:
            result = run.finish()
        skip_if_cannot_run(result)
        expect(result.returncode == 0, f"expected exit 0, got {result.returncode}", result)
        expect("Correct: True" in result.stdout, "verification should pass", result)
        recorded = run.ranks()
        left = run.left_behind()
    expect(sorted(recorded) == [0, 1], f"both ranks should have recorded, got {recorded}", result)
    for rank, (namespace, _, qdiscs) in recorded.items():
        expect(re.search(rf"qdisc tbf \S+ dev {run.veth} root .*rate 1Gbit\b", qdiscs),
               f"rank {rank} in {namespace} should see its end of the link shaped to 1 Gbit/s:\n{qdiscs}")
    expect(not left, f"left behind: {left}", result)
    print(f"shaped run took {result.seconds:.1f} s")


# (script options, text its one line on stderr must contain); --binary and --mpiexec are this
# build's unless given.
BAD_SCRIPT_ARGUMENTS = [
    (["--gbit", "0"], "--gbit: must be a number of Gbit/s in 0.001..100 with at most three decimals, not '0'"),
    (["--gbit", "abc"], "--gbit: must be a number of Gbit/s in 0.001..100 with at most three decimals, not 'abc'"),
    (["--gbit", "1000"], "--gbit: must be a number of Gbit/s in 0.001..100"),
    (["--gbit", "1e3"], "--gbit: must be a number of Gbit/s in 0.001..100"),
    (["--gbit"], "--gbit needs a value"),
    (["--gbit", "1", "--gbit", "2"], "--gbit given twice"),
    (["--no-such-option"], "unknown option '--no-such-option'"),
    (["--hidden-size", "64"], "unknown option '--hidden-size'; tp_mlp's own flags go after --"),
    (["--timeout", "0"], "--timeout: must be a whole number of seconds in 1..86400, not '0'"),
    (["--binary", "/nonexistent"], "--binary /nonexistent: no executable file there"),
    (["--mpiexec", "/nonexistent"], "--mpiexec /nonexistent: not found"),
    (["--mpiexec", "true"], "--mpiexec true is not Open MPI's launcher"),
]


def case_two_hosts_refuses_clearly():
    def run_script(flags):
        given = {"--binary": ARGS.binary, "--mpiexec": ARGS.mpiexec}
        defaults = [word for option, value in given.items() if option not in flags for word in (option, value)]
        return timed_run([TWO_HOSTS, *defaults, *flags])

    check_refusals(BAD_SCRIPT_ARGUMENTS, run_script, status=USAGE_ERROR, one_line=True)

    # Where it cannot run: no iproute2; not root; or root without CAP_NET_ADMIN (setpriv drops
    # it), which makes the namespaces but not the veth pair, and must remove them again.
    if shutil.which("ip") is None:
        prefix, reason = [], "no ip command"
    elif os.geteuid() != 0:
        prefix, reason = [], "not root"
    elif shutil.which("setpriv"):
        prefix, reason = ["setpriv", "--bounding-set", "-net_admin"], "CAP_NET_ADMIN"
    else:
        print("setpriv is not installed: not checking the refusal without CAP_NET_ADMIN")
        return
    with tempfile.TemporaryDirectory() as tmp:
        with TwoHosts(tmp, prefix=prefix) as run:
            result = run.finish(timeout=FAIL_FAST_SECONDS)
        left = run.left_behind()
    lines = result.stderr.splitlines()
    expect(result.returncode == SKIPPED, f"expected exit {SKIPPED} (cannot run here)", result)
    expect(len(lines) == 1 and lines[0].startswith("two_hosts.sh: cannot run here: ") and reason in lines[0],
           f"expected one line saying it cannot run here, naming {reason!r}", result)
    expect(not left, f"left behind: {left}", result)
    print(f"ok  {' '.join(prefix) or '(not root)'}  ->  exit {result.returncode}: {lines[0]}")


def stopped_while_benchmarking(options, stop, within):
    """Starts a long run with the script's `options`, calls stop(process) once the timed loop
    runs; returns the result, the ranks recorded, what was left behind and the seconds from
    stop() to the script's end, which must be fewer than `within`."""
    with tempfile.TemporaryDirectory() as tmp:
        with TwoHosts(tmp, *options, "--", "--hidden-size", "256", "--scheme", "megatron",
                      "--iterations", "1000000") as run:
            try:
                wait_for_output(run.proc, "COMMUNICATION ANALYSIS", 60)  # last words before the timed loop
            except AssertionError:
                skip_if_cannot_run(run.finish())
                raise
            time.sleep(0.5)  # inside the timed loop now
            recorded = run.ranks()
            stopping = time.monotonic()
            stop(run.proc)
            result = run.finish(timeout=within)
            seconds = time.monotonic() - stopping
        return result, recorded, run.left_behind(), seconds


def case_two_hosts_stopped_from_outside():
    # Long runs ended while they benchmark: by SIGTERM, by SIGINT (Ctrl-C) and by the script's
    # own --timeout. Each must end the job, remove everything it made, and tell how it ended.
    limit = 10  # seconds of --timeout; a 5 s grace follows before mpirun is killed
    ways = [("SIGTERM", [], lambda p: p.send_signal(signal.SIGTERM), FAIL_FAST_SECONDS, 128 + signal.SIGTERM),
            ("SIGINT", [], lambda p: p.send_signal(signal.SIGINT), FAIL_FAST_SECONDS, 128 + signal.SIGINT),
            ("--timeout", ["--timeout", str(limit)], lambda p: None, limit + 5 + FAIL_FAST_SECONDS, 124)]
    for way, options, stop, within, status in ways:
        result, recorded, left, seconds = stopped_while_benchmarking(options, stop, within)
        expect(sorted(recorded) == [0, 1], f"{way}: both ranks should have been running, got {recorded}", result)
        expect(result.returncode == status, f"{way}: expected exit {status}", result)
        expect(not left, f"{way}: left behind: {left}", result)
        print(f"{way}: the script ended {seconds:.1f} s later, exit {result.returncode}, nothing left behind")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", choices=[n[5:] for n in globals() if n.startswith("case_")])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--np-flag", default="-n")
    parser.add_argument("--preflags", default="")
    ARGS = parser.parse_args()
    try:
        globals()["case_" + ARGS.case]()
    except Skipped as e:
        print(f"SKIPPED {ARGS.case}: {e}")
        return SKIPPED
    except (AssertionError, subprocess.TimeoutExpired) as e:
        print(f"FAILED {ARGS.case}: {e}", file=sys.stderr)
        return 1
    print(f"passed {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
