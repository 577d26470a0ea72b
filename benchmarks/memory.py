"""Peak memory per phase of a run: what each import, compilation and execution adds to the
resident set, so that memory can be cut where it goes.

Run: .venv/bin/python benchmarks/memory.py [--runs online-awm-transformer,online-awm-lstm,fit]
     [--out benchmarks/results/memory.jsonl] [--redo]

Each run is measured in a fresh process (``--child``), phase by phase: before a phase the kernel's
record of the peak resident set is reset (``/proc/self/clear_refs``, 5), and after it the peak
(``VmHWM``) and the current resident set (``VmRSS``) are read, so each phase's peak is its own;
then glibc's ``malloc_trim(0)`` hands freed heap back to the kernel and the resident set is read
again (``in_use_mib``: what the process still holds, as against memory freed but kept by the
allocator), so the next phase starts from that.
Phases: ``import jax``, ``import awmctl`` (its own imports: equinox, optax, the models and
algorithms), the CLI's imports (typer, rich, orbax, matplotlib, tensorboardX), building the
algorithm (templates traced abstractly), ``init`` (one compiled program, run once), the first
chunk (the training program's compilation and one run), and three steady chunks. The online runs
are `optimize-policy --online` on CANCER at H = 100 with the paper's schedule (the process the
authors' code is compared with), fit is `fit-model`'s loop (awm-transformer, 512 episodes),
collect 512 random episodes. Then the whole command in a fresh process under ``/usr/bin/time
-v`` (its maximum resident set, what a user's process reaches). One JSON line per run is
appended to --out, tagged with the machine; a run already there for this machine is skipped.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def status() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return fields


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


class Phases:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def __call__(self, name: str, fn):
        reset_peak()
        start = time.perf_counter()
        out = fn()
        seconds, now = time.perf_counter() - start, status()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.rows.append(
            {
                "phase": name,
                "peak_mib": round(now["VmHWM"], 1),
                "rss_mib": round(now["VmRSS"], 1),
                "in_use_mib": round(status()["VmRSS"], 1),
                "s": round(seconds, 2),
            }
        )
        return out


def child(run: str) -> list[dict]:
    phases = Phases()
    jax = phases("import jax", lambda: __import__("jax"))
    awmctl = phases("import awmctl", lambda: __import__("awmctl"))
    phases("the CLI's imports", lambda: __import__("awmctl.cli"))
    task = awmctl.make_task("cancer", 100)
    if run.startswith("online-"):
        spec = awmctl.model_spec(run.removeprefix("online-"))
        config = awmctl.OnlineConfig.preset("paper", env_steps=5000)
        loop = phases("build", lambda: awmctl.OnlineBPO(task, spec, "mlp", config))
        state = phases("init", lambda: jax.block_until_ready(loop.init([0])))
        state = phases("first chunk (compile)", lambda: loop.run_chunk(state)[0])
        for _ in range(3):
            state = phases("steady chunk", lambda state=state: loop.run_chunk(state)[0])
    elif run == "fit":
        episodes = phases(
            "collect 512",
            lambda: awmctl.collect(task, awmctl.random_controller(task), 512, jax.random.key(0)),
        )
        fit = phases(
            "build", lambda: awmctl.ModelFit.create(episodes, "awm-transformer", steps=200)
        )
        state = phases("init", lambda: jax.block_until_ready(fit.init([0])))
        state = phases("first chunk (compile)", lambda: fit.run_chunk(state)[0])
        for _ in range(3):
            state = phases("steady chunk", lambda state=state: fit.run_chunk(state)[0])
    elif run == "collect":
        controller = awmctl.random_controller(task)
        phases(
            "collect 512 (compile and run)",
            lambda: awmctl.collect(task, controller, 512, jax.random.key(0)),
        )
    else:
        raise SystemExit(f"unknown run {run!r}")
    return phases.rows


def command(run: str, scratch: Path) -> list[str]:
    awmctl = [str(Path(sys.executable).with_name("awmctl"))]
    if run.startswith("online-"):
        model = run.removeprefix("online-")
        return [*awmctl, "optimize-policy", "--online", "--task", "cancer", "--horizon", "100",
                "--model", model, "--preset", "paper", "--out", str(scratch / "run")]  # fmt: skip
    data = scratch / "data"
    collect = [*awmctl, "collect", "--task", "cancer", "--horizon", "100", "--out", str(data)]
    if run == "collect":
        return collect
    subprocess.run(collect, check=True, capture_output=True)
    return [*awmctl, "fit-model", "--data", str(data), "--model", "awm-transformer", "--steps",
            "200", "--out", str(scratch / "model")]  # fmt: skip


def whole(run: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="awmctl-memory-") as scratch:
        argv = ["/usr/bin/time", "-v", *command(run, Path(scratch))]
        env = {**os.environ, "AWMCTL_COMPILATION_CACHE": "off"}
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    line = next(l for l in done.stderr.splitlines() if "Maximum resident set size" in l)
    wall = next(l for l in done.stderr.splitlines() if "Elapsed (wall clock)" in l)
    return {"command_peak_mib": round(int(line.split()[-1]) / 1024, 1), "wall": wall.split()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="online-awm-transformer,online-awm-lstm,fit,collect")
    parser.add_argument("--out", default="benchmarks/results/memory.jsonl")
    parser.add_argument("--redo", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    sys.path.insert(0, str(HERE))
    from online_speed import machine

    where = machine()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    for run in args.runs.split(","):
        done = [
            r
            for r in rows
            if r["run"] == run and r["machine"]["cpu"] == where["cpu"]
            and r["machine"]["jaxlib"] == where["jaxlib"]
        ]  # fmt: skip
        if done and not args.redo:
            row = done[-1]
        else:
            env = {**os.environ, "AWMCTL_COMPILATION_CACHE": "off"}
            phased = subprocess.run(
                [sys.executable, __file__, "--child", run],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            row = {
                "run": run,
                "machine": where,
                "phases": json.loads(phased.stdout.splitlines()[-1]),
                **whole(run),
            }
            rows.append(row)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"\n{run}: the whole command's peak {row['command_peak_mib']} MiB ({row['wall']})")
        print(f"  {'phase':<30}{'peak MiB':>10}{'after MiB':>11}{'in use MiB':>12}{'s':>8}")
        for p in row["phases"]:
            print(
                f"  {p['phase']:<30}{p['peak_mib']:>10}{p['rss_mib']:>11}{p['in_use_mib']:>12}"
                f"{p['s']:>8}"
            )


if __name__ == "__main__":
    main()
