"""Online BPO speed (the paper's Algorithm 1) next to the paper authors' code, on this machine.

Run: .venv/bin/python benchmarks/online_speed.py [--parts peak,updates,seeds,compile,runs,processes]
     [--models awm-transformer,awm-lstm,markov-mlp] [--seeds 1,4] [--run-seeds 1] [--processes N]
     [--out benchmarks/results/online_speed.jsonl] [--redo]

Parts (each row is appended to --out as one JSON line, tagged with the machine, backend and
jax/jaxlib versions; a row already there for this machine is skipped, so an interrupted run
resumes: pass --redo to measure again):
- peak: a 1024x1024 float32 matrix product (GFLOP/s), the reference for the updates' rates;
- updates: one model update (64 whole episodes of CANCER at H=100: `model_step`, as online BPO
  and fit-model run it), compiled alone and inside a loop of 20 updates in one compiled call (as
  the commands run it; the rate and the share of the matmul's are the loop's), and one policy
  update (16 imagined rollouts of 100 steps: `policy_step` through the model, in BPO's compiled
  chunk of 10); milliseconds (median of --repeats), XLA's FLOP count and the achieved GFLOP/s;
  and the model update's matrix products as its jaxpr writes them, each timed alone in a loop
  (`products_alone.py`): their summed milliseconds and rate, the rate this machine reaches on
  products of the model's own shapes;
- seeds: one evaluation period of online BPO (32 env steps with their updates, compiled as the
  command runs it) for each of --seeds at once; time per period and its ratio to one seed;
- compile: `optimize-policy --online` on a short budget in a fresh process, twice with one new
  persistent compilation cache: seconds JAX spent compiling (cold, then from the cache);
- runs: the whole command, `awmctl optimize-policy --online --task cancer --horizon 100 --model M
  --seeds S` (5000 env steps, the authors' schedule), in a fresh process: wall seconds per seed
  (compilation included) and the final return;
- processes: the same command with `--seeds N --processes N` (N = --processes, default the number
  of cores): N seeds in N local processes, wall seconds per seed.

The authors' figures were measured on a 2-core AMD EPYC (Zen 3) with their code; they are
printed beside ours for reference, not remeasured here.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
from host import cpu_model  # benchmarks/, on the path when this script runs
from products_alone import products_alone

from awmctl import (
    BPO,
    BPOConfig,
    OnlineBPO,
    OnlineConfig,
    collect,
    make_task,
    model_spec,
    optim,
    random_controller,
)
from awmctl.algorithms import model_step

#: The paper authors' code on a 2-core AMD EPYC (Zen 3): (model update ms, policy update ms, run s)
AUTHORS = {
    "awm-transformer": (123, 124, 280),
    "awm-lstm": (35, 9.9, 82),
    "markov-mlp": (0.76, 0.37, 9),
}
#: (the authors' code has no state-space AWM: "-" in its columns)
NO_FIGURE = ("-", "-", "-")
TARGETS = {"awm-transformer": 90, "awm-lstm": 25, "markov-mlp": 10}  # whole-run seconds per seed
LOOP = 20  # model updates per compiled call in the in-loop measurement


def machine() -> dict:
    cpu = cpu_model()
    devices = jax.devices()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "device": str(devices[0].device_kind),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "awmctl": importlib.metadata.version("awmctl"),
    }


def median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(compiled_fn, *args) -> float:
    cost = compiled_fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost.get("flops", 0.0))


def peak(repeats: int) -> dict:
    x = jnp.ones((1024, 1024), jnp.float32)
    product = jax.jit(lambda a: a @ a)
    seconds = median_seconds(product, x, repeats=repeats * 10)
    return {"gflops": round(2 * 1024**3 / seconds / 1e9, 1)}


def model_update(name: str):
    """One world-model update of ``name`` as online BPO and fit-model run it (`model_step` on 64
    whole episodes of CANCER at H=100), unjitted, with its arguments; and the task and episodes."""
    task = make_task("cancer", 100)
    episodes = collect(task, random_controller(task), 256, jax.random.key(0))
    obs, act = jnp.asarray(episodes.observations[:64]), jnp.asarray(episodes.actions[:64])
    model = (
        model_spec(name)
        .build(1, 1, 100, key=jax.random.key(0))
        .with_normalizers(episodes.observations)
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)
    tx = optim.adam(1e-3)

    def update(p, o, ob, ac):
        return model_step(p, o, static, tx, ob, ac)[:2]

    return update, (params, tx.init(params), obs, act), task, episodes, model


def updates(name: str, repeats: int) -> dict:
    update, args, task, episodes, model = model_update(name)
    step = jax.jit(update)
    model_s = median_seconds(step, *args, repeats=repeats)
    model_flops = flops(step, *args)
    # As online BPO and fit-model run it: many updates inside one compiled loop. A call of one
    # update alone also pays for its temporary buffer (tens of MB, mapped afresh by the allocator
    # at every call: page faults), which the loop pays once per chunk.
    loop = jax.jit(
        lambda p, o, ob, ac: jax.lax.scan(
            lambda c, _: (update(*c, ob, ac), None), (p, o), None, length=LOOP
        )[0]
    )
    loop_s = median_seconds(loop, *args, repeats=max(3, repeats // 2)) / LOOP
    chunk = 10
    bpo = BPO(
        task, model, "mlp", episodes.observations[:64], BPOConfig(steps=10**9, log_every=chunk)
    )
    state = bpo.init([0])
    policy_s = median_seconds(bpo.train_chunk, state, repeats=max(2, repeats // 4)) / chunk
    # The update's own products, each timed alone: how fast this machine runs products of these
    # shapes, the reference that the 1024x1024 peak is not for a model of width 48.
    alone = products_alone(update, *args)
    return {
        **alone,
        "model_update_ms": round(model_s * 1e3, 2),
        "model_update_gflop": round(model_flops / 1e9, 3),
        "model_update_gflops": round(model_flops / model_s / 1e9, 1),
        "model_update_loop_ms": round(loop_s * 1e3, 2),
        "model_update_loop_gflops": round(model_flops / loop_s / 1e9, 1),
        "policy_update_ms": round(policy_s * 1e3, 2),
    }


def seeds(name: str, counts: list[int], repeats: int) -> dict:
    task = make_task("cancer", 100)
    loop = OnlineBPO(
        task,
        model_spec(name),
        "mlp",
        OnlineConfig.preset("paper", warmup_steps=0, updates_from="first-episode"),
    )
    period = {}
    for n in counts:
        state = loop.init(range(n))
        for _ in range(4):  # past the first episode, so that every update runs
            state, _ = loop.run_chunk(state)
        period[n] = median_seconds(lambda s: loop.run_chunk(s)[0], state, repeats=repeats)
    one = period[counts[0]]
    return {
        "period_ms": {str(n): round(s * 1e3, 1) for n, s in period.items()},
        "ratio": {str(n): round(s / one, 2) for n, s in period.items()},
    }


def command(name: str, n_seeds: int, extra: list[str], env: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="awmctl-bench-") as scratch:
        return _command(Path(scratch) / "run", name, n_seeds, extra, env)


def _command(out: Path, name: str, n_seeds: int, extra: list[str], env: dict) -> dict:
    argv = [
        str(Path(sys.executable).with_name("awmctl")),
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        "100",
        "--model",
        name,
        "--seeds",
        str(n_seeds),
        "--out",
        str(out),
        "--json",
        "--preset",
        "paper",
        *extra,
    ]  # the paper's schedule, which this benchmark's targets were set for
    start = time.perf_counter()
    result = subprocess.run(
        argv, check=False, capture_output=True, text=True, env={**os.environ, **env}
    )
    wall = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-2000:]}")
    summary = json.loads(result.stdout)
    return {
        "process_s": round(wall, 1),
        "compile_s": summary["compile_s"],
        "loop_s": summary["wall_s"],
        "final_return_mean": summary["final_return_mean"],
        "final_return_ci95": summary["final_return_ci95"],
        "returns": json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])[
            "eval/eval_return"
        ],
    }


def compile_times(name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="awmctl-cache-") as cache:
        cold = command(name, 1, ["--env-steps", "64"], {"AWMCTL_COMPILATION_CACHE": cache})
        warm = command(name, 1, ["--env-steps", "64"], {"AWMCTL_COMPILATION_CACHE": cache})
    return {
        "cold_compile_s": cold["compile_s"],
        "warm_compile_s": warm["compile_s"],
        "cold_process_s": cold["process_s"],
        "warm_process_s": warm["process_s"],
    }


def whole_run(name: str, n_seeds: int, extra: tuple[str, ...] = ()) -> dict:
    row = command(name, n_seeds, list(extra), {"AWMCTL_COMPILATION_CACHE": "off"})
    row["per_seed_s"] = round(row["process_s"] / n_seeds, 1)
    return row


def processes_run(name: str, count: int) -> dict:
    """``count`` seeds in ``count`` local processes (``--processes``)."""
    return whole_run(name, count, ("--processes", str(count)))


class Rows:
    """The rows measured so far (``--out``, one JSON object per line): a row measured on this
    machine (CPU, backend, jaxlib) is read back instead of measured again, unless ``redo``."""

    def __init__(self, out: Path, where: dict, redo: bool):
        self.out, self.where, self.redo = out, where, redo
        out.parent.mkdir(parents=True, exist_ok=True)
        self.rows = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []

    @staticmethod
    def key(row: dict) -> tuple:
        machine = row["machine"]
        return (
            row["part"],
            row.get("model"),
            row.get("seeds"),
            machine["cpu"],
            machine["backend"],
            machine["jaxlib"],
        )

    def measure(self, part: str, fn, model: str | None = None, n: int | None = None, **kwargs):
        row = {"part": part, "model": model, "seeds": n, "machine": self.where}
        done = [r for r in self.rows if self.key(r) == self.key(row)]
        if done and not self.redo:
            return done[-1]
        row.update(fn(**kwargs))
        self.rows.append(row)
        with open(self.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        return row


def report_updates(rows: Rows, models: list[str], top: float | None, repeats: int) -> None:
    print(
        f"\n{'per update':<18}{'model ms':>10}{'in loop':>9}{'authors':>9}{'GFLOP/s':>9}"
        f"{'% of peak':>10}{'products':>10}{'GFLOP/s':>9}{'policy ms':>11}{'authors':>9}",
        flush=True,
    )
    nan = float("nan")
    for name in models:
        r = rows.measure("updates", updates, name, name=name, repeats=repeats)
        loop_ms, rate = r.get("model_update_loop_ms", nan), r.get("model_update_loop_gflops", nan)
        share = f"{100 * rate / top:.0f}%" if top else "-"
        authors = AUTHORS.get(name, NO_FIGURE)
        alone_ms, alone_rate = r.get("products_alone_ms", nan), r.get("products_alone_gflops", nan)
        print(
            f"{name:<18}{r['model_update_ms']:>10.1f}{loop_ms:>9.1f}{authors[0]:>9}{rate:>9.1f}"
            f"{share:>10}{alone_ms:>10.1f}{alone_rate:>9.1f}"
            f"{r['policy_update_ms']:>11.1f}{authors[1]:>9}",
            flush=True,
        )
    print(
        "(GFLOP/s and % of the matmul: the update in the loop; products: the update's own matrix "
        "products,\n each timed alone, summed ms and their rate)",
        flush=True,
    )


def report_seeds(rows: Rows, models: list[str], counts: list[int], repeats: int) -> None:
    print(
        f"\n{'seeds':<18}"
        + "".join(f"{c:>9}" for c in counts)
        + "   (eval period of 32 env steps, ms; ratio)"
    )
    for name in models:
        r = rows.measure(
            "seeds", seeds, name, name=name, counts=counts, repeats=max(3, repeats // 4)
        )
        print(
            f"{name:<18}"
            + "".join(f"{r['period_ms'][str(c)]:>9.1f}" for c in counts)
            + "   "
            + " ".join(f"x{r['ratio'][str(c)]}" for c in counts),
            flush=True,
        )


def report_compile(rows: Rows, models: list[str]) -> None:
    print(f"\n{'compile (64 steps)':<18}{'cold s':>9}{'cached s':>9}", flush=True)
    for name in models:
        r = rows.measure("compile", compile_times, name, name=name)
        print(f"{name:<18}{r['cold_compile_s']:>9.1f}{r['warm_compile_s']:>9.1f}", flush=True)


def report_runs(rows: Rows, models: list[str], counts: list[int]) -> None:
    print(
        f"\n{'whole run':<18}{'seeds':>6}{'s/seed':>8}{'target':>8}{'authors':>9}{'compile s':>10}"
        f"{'return':>9}",
        flush=True,
    )
    for name in models:
        for n in counts:
            r = rows.measure("runs", whole_run, name, n, name=name, n_seeds=n)
            print(
                f"{name:<18}{n:>6}{r['per_seed_s']:>8.1f}{TARGETS.get(name, '-'):>8}"
                f"{AUTHORS.get(name, NO_FIGURE)[2]:>9}"
                f"{r['compile_s']:>10.1f}{r['final_return_mean']:>9.2f}",
                flush=True,
            )


def report_processes(rows: Rows, models: list[str], p: int) -> None:
    print(
        f"\n{f'{p} seeds, {p} processes':<24}{'s/seed':>8}{'target':>8}{'authors':>9}{'return':>9}",
        flush=True,
    )
    for name in models:
        r = rows.measure("processes", processes_run, name, p, name=name, count=p)
        print(
            f"{name:<24}{r['per_seed_s']:>8.1f}{TARGETS.get(name, '-'):>8}"
            f"{AUTHORS.get(name, NO_FIGURE)[2]:>9}{r['final_return_mean']:>9.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="peak,updates,seeds,compile,runs,processes")
    parser.add_argument("--models", default="awm-transformer,awm-lstm,markov-mlp")
    parser.add_argument("--seeds", default="1,4", help="seed counts compared in the 'seeds' part")
    parser.add_argument(
        "--run-seeds", default="1", help="seed counts of the whole runs ('runs' part)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="local processes (and seeds) of the 'processes' part",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/online_speed.jsonl")
    parser.add_argument(
        "--redo", action="store_true", help="measure rows that are already in --out again"
    )
    args = parser.parse_args()
    where = machine()
    rows = Rows(Path(args.out), where, args.redo)
    parts = set(args.parts.split(","))
    models = args.models.split(",")
    print(
        f"# {where['cpu']}, {where['cores']} cores, {where['backend']} ({where['device']}), "
        f"jax {where['jax']}, jaxlib {where['jaxlib']}",
        flush=True,
    )
    top = rows.measure("peak", peak, repeats=args.repeats)["gflops"] if "peak" in parts else None
    if top:
        print(f"1024x1024 float32 matmul: {top} GFLOP/s", flush=True)
    if "updates" in parts:
        report_updates(rows, models, top, args.repeats)
    if "seeds" in parts:
        report_seeds(rows, models, [int(c) for c in args.seeds.split(",")], args.repeats)
    if "compile" in parts:
        report_compile(rows, models)
    if "runs" in parts:
        report_runs(rows, models, [int(c) for c in args.run_seeds.split(",")])
    if "processes" in parts:
        report_processes(rows, models, args.processes)


if __name__ == "__main__":
    main()
