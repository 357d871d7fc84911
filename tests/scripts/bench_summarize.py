#!/usr/bin/env python3
"""bench/run.sh --summarize, without running anything: a directory with no runs (mistyped, or
empty) gets one line on stderr and exit 66, never a traceback, and a mistyped one is not
created; a relative directory is the caller's, not the repository's; the summary prints the
facts of the machine that made the runs (machine.json, the reports' native_bf16), not this
machine's. The runs summarized are bench/results' reports, with the recorded machine replaced
by a made-up one so that this machine cannot be mistaken for it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RUN = os.path.join(REPO, "bench", "run.sh")
RESULTS = os.path.join(REPO, "bench", "results")
# Every report bench/run.sh recorded (machine.json is the machine, not a run).
RUNS = sorted(f[:-len(".json")] for f in os.listdir(RESULTS) if f.endswith(".json") and f != "machine.json")
NO_INPUT = 66
SECONDS = 30  # for one summary; it reads a few JSON files
MADE_UP = {"cpu": "Made-up CPU 9000", "cores": 7, "isa": "AVX2, no native bf16", "recorded": "2000-01-01"}

failures = []


def check(ok, what, result=None):
    if ok:
        return
    detail = f"\nexit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}" if result else ""
    failures.append(what + detail)


def summarize(directory, cwd):
    return subprocess.run([RUN, "--summarize", directory], cwd=cwd, capture_output=True, text=True,
                          timeout=SECONDS)


def refused_in_one_line(result, words, what):
    lines = result.stderr.splitlines()
    check(result.returncode == NO_INPUT, f"{what}: expected exit {NO_INPUT}", result)
    check(len(lines) == 1 and all(w in result.stderr for w in words),
          f"{what}: expected one line on stderr saying {words}", result)
    check("Traceback" not in result.stdout + result.stderr, f"{what}: a traceback", result)


def this_machine():
    with open("/proc/cpuinfo") as f:
        return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        name = os.path.basename(tmp)  # unique: the repository cannot already hold these names
        empty, half, runs = (f"{name}-{what}" for what in ["empty", "half", "runs"])
        strays = [os.path.join(REPO, d) for d in [name, empty, half, runs]]
        try:
            # A mistyped directory, relative: refused, named as the caller gave it, not created.
            mistyped = summarize(os.path.join(name, "nowhere"), cwd=os.path.dirname(tmp))
            refused_in_one_line(mistyped, ["no directory", os.path.join(tmp, "nowhere")], "a mistyped directory")
            check(not os.path.exists(os.path.join(tmp, "nowhere")), "the mistyped directory was created")

            # An empty directory, and one a run left half-made.
            os.mkdir(os.path.join(tmp, empty))
            refused_in_one_line(summarize(empty, cwd=tmp), ["no runs in", os.path.join(tmp, empty)],
                                "an empty directory")
            os.mkdir(os.path.join(tmp, half))
            shutil.copy(os.path.join(RESULTS, "large.json"), os.path.join(tmp, half))
            refused_in_one_line(summarize(half, cwd=tmp), ["lacks", "large_bf16.json"], "a half-made directory")

            # Runs made on another machine, summarized here from the caller's directory.
            os.mkdir(os.path.join(tmp, runs))
            for run in RUNS:
                with open(os.path.join(RESULTS, run + ".json")) as f:
                    doc = json.load(f)
                doc["machine"]["native_bf16"] = False  # as the made-up machine would have said
                doc["machine"]["amx_bf16"] = False
                with open(os.path.join(tmp, runs, run + ".json"), "w") as f:
                    json.dump(doc, f)
            with open(os.path.join(tmp, runs, "machine.json"), "w") as f:
                json.dump(MADE_UP, f)
            result = summarize(runs, cwd=tmp)
            check(result.returncode == 0, "a summary of complete runs should exit 0", result)
            first = result.stdout.splitlines()[0] if result.stdout else ""
            check(first.startswith("machine: Made-up CPU 9000, 7 cores, AVX2, no native bf16;"),
                  "the summary should name the machine that made the runs", result)
            model = this_machine()
            check(not model or model not in result.stdout, f"the summary names this machine ({model})", result)
            check("n/a      bf16 speed: the machine that ran had no native bf16" in result.stdout and
                  "bf16: forward >= 1.8 x fp32" not in result.stdout,
                  "bf16 speed is judged by the machine that ran", result)

            # The recorded results themselves summarize, naming their machine.
            with open(os.path.join(RESULTS, "machine.json")) as f:
                recorded = json.load(f)
            result = summarize(os.path.relpath(RESULTS, tmp), cwd=tmp)
            named = f"machine: {recorded['cpu']}, {recorded['cores']} cores, {recorded['isa']};"
            check(result.returncode == 0 and result.stdout.startswith(named)
                  and "bf16: forward >= 1.8 x fp32" in result.stdout,
                  "bench/results should summarize with its recorded machine", result)
        finally:
            for stray in strays:  # made by a script that resolved against the repository
                if os.path.exists(stray):
                    shutil.rmtree(stray)
                    failures.append(f"a relative directory was made in the repository: {stray}")
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    if not failures:
        print("passed: refusals in one line, the caller's directory, the recorded machine")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
