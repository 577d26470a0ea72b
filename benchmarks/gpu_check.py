"""The parts of ``benchmarks/gpu_check.sh``: what awmctl does on an accelerator, one part per
process, each appending one JSON row to ``--out``.

Run by the script (``bash benchmarks/gpu_check.sh DIR``); alone:
    python benchmarks/gpu_check.py device --out DIR/results.jsonl
    python benchmarks/gpu_check.py online --model awm-transformer --seeds 64 --out ... [--lock F]
    python benchmarks/gpu_check.py fit --model awm-lstm --steps 500 --out ...
    python benchmarks/gpu_check.py precision --out ...
    python benchmarks/gpu_check.py report DIR/results.jsonl

Parts:
- ``device``: the accelerator, its memory, the versions and the default matmul precision's rate;
- ``online``: online BPO (Algorithm 1) on CANCER, all ``--seeds`` in one compiled program
  (through one model, or an ``--ensemble`` of K members with ``--pessimism``)
  (``--seed-mode vmap``, the accelerator's default), through the Python API as the command's
  driver runs it (chunk by chunk, minus the disk): the seconds to initialise, the first chunk
  (compilation), each later chunk, the final return of every seed, peak device memory. A run
  stopped by ``--cap`` (its loop's seconds) reports how far it came and its projected whole;
- ``fit``: ``fit-model``'s training loop on 512 random episodes of CANCER: steps per second at
  steady state (chunks of ``--log-every`` steps, one compiled call each), its compilation;
- ``precision``: the effect of the default float32 matmul precision (TF32 on NVIDIA GPUs since
  Ampere) against ``highest`` (true float32): a large product's rate at both, and the relative
  difference of a transformer AWM's model-update gradient and policy gradient (H steps, 16
  starts) computed at both;
- ``report``: the rows as the markdown tables of docs/benchmarks.md.

The processes of one script run compile at the same time (XLA compiles on the host's cores);
their timed sections take ``--lock`` (an exclusive file lock) so that no two time the device at
once. Nothing here writes outside ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import jax

PRECISION = os.environ.get("GPU_CHECK_PRECISION", "")
if PRECISION:  # before anything is traced
    jax.config.update("jax_default_matmul_precision", PRECISION)

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from awmctl import (
    ModelFit,
    OnlineBPO,
    OnlineConfig,
    collect,
    make_task,
    model_spec,
    optim,
    random_controller,
)
from awmctl.algorithms import model_step, policy_gradient
from awmctl.algorithms.interaction import whole_periods
from awmctl.policies import build_policy


def device_memory() -> dict:
    """Peak and current bytes the device's allocator holds (None on a CPU), and the host's peak
    resident memory."""
    stats = jax.local_devices()[0].memory_stats() or {}
    mib = lambda b: None if b is None else round(b / 2**20, 1)
    return {
        "device_peak_mib": mib(stats.get("peak_bytes_in_use")),
        "device_limit_mib": mib(stats.get("bytes_limit")),
        "host_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


@contextlib.contextmanager
def timed_section(args):
    """Exclusive use of the device for timing (``args.lock``, a file lock shared by the script's
    processes); yields the seconds the timed loop may take: ``args.cap``, or what is left before
    ``args.deadline`` (a Unix time) when that is less."""
    with contextlib.ExitStack() as stack:
        if args.lock:
            f = stack.enter_context(open(args.lock, "a"))
            fcntl.flock(f, fcntl.LOCK_EX)
            stack.callback(fcntl.flock, f, fcntl.LOCK_UN)
        cap = args.cap
        if args.deadline:
            cap = min(cap, args.deadline - time.time())
        yield max(cap, 0.0)


def write(out: str, row: dict) -> None:
    row = {
        **row,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "matmul_precision": PRECISION or "default",
        "jax": jax.__version__,
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def median_seconds(fn, *args, repeats: int = 5) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ------------------------------------------------------------------------------------ the parts


def device(args) -> dict:
    dev = jax.devices()[0]
    versions = {}
    for pkg in ("jax", "jaxlib", "equinox", "optax", "orbax-checkpoint", "awmctl"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    n = args.matmul
    x = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    rates = {}
    for precision in ("default", "highest"):
        with jax.default_matmul_precision(None if precision == "default" else precision):
            product = jax.jit(lambda a: a @ a)
            rates[precision] = round(2 * n**3 / median_seconds(product, x) / 1e12, 2)
    return {
        "part": "device",
        "platform": dev.platform,
        "device_count": jax.device_count(),
        "cores": os.cpu_count(),
        "versions": versions,
        "python": sys.version.split()[0],
        f"matmul_{n}_tflops": rates,
        **device_memory(),
    }


def online(args) -> dict:
    task = make_task("cancer", args.horizon)
    given = {"env_steps": args.env_steps, "seed_mode": args.seed_mode}
    if args.ensemble > 1:
        given |= {"ensemble": args.ensemble, "pessimism": args.pessimism}
    if args.warmup is not None:
        given["warmup_steps"] = args.warmup
    config = OnlineConfig.preset(args.preset, **given)
    loop = OnlineBPO(task, model_spec(args.model), "mlp", config)
    start = time.perf_counter()
    state = jax.block_until_ready(loop.init(range(args.seeds)))
    init_s = time.perf_counter() - start
    periods = whole_periods(config.env_steps, config.eval_every) // config.eval_every
    warmup_periods = min(periods, config.warmup_steps // config.eval_every)
    # The first chunk is a warm-up period (cheap to run): its time is mostly compilation.
    start = time.perf_counter()
    state, metrics = loop.run_chunk(state)
    first_s = time.perf_counter() - start
    times = []
    with timed_section(args) as cap:
        began = time.perf_counter()
        while not loop.done(state) and time.perf_counter() - began < cap:
            start = time.perf_counter()
            state, metrics = loop.run_chunk(state)  # NumPy metrics: the chunk has finished
            times.append(time.perf_counter() - start)
    done = 1 + len(times)
    updating = times[max(0, warmup_periods - 1) :] or times or [first_s]
    steady = statistics.median(updating)
    projected = init_s + first_s + sum(times) + (periods - done) * steady
    final = np.asarray(metrics["eval/eval_return"], np.float64)
    return {
        "part": "online",
        "model": args.model,
        "seeds": args.seeds,
        "seed_mode": loop.sequential_seeds and "sequential" or "vmap",
        "preset": args.preset,
        "ensemble": args.ensemble,
        "horizon": args.horizon,
        "env_steps": config.steps_run,
        "completed": bool(loop.done(state)),
        "periods_done": done,
        "periods": periods,
        "init_s": round(init_s, 2),
        "first_chunk_s": round(first_s, 2),
        "loop_s": round(sum(times), 2),
        "updating_period_ms": round(steady * 1e3, 1),
        "run_s": round(projected, 1),  # measured when completed, else projected
        "model_updates": int(np.asarray(state.model_updates)[0]),
        "policy_updates": int(np.asarray(state.policy_updates)[0]),
        "final_return_mean": round(float(final.mean()), 4),
        "final_returns": [round(float(r), 4) for r in final],
        **device_memory(),
    }


def fit(args) -> dict:
    task = make_task("cancer", args.horizon)
    episodes = collect(task, random_controller(task), args.episodes, jax.random.key(0))
    fitter = ModelFit.create(episodes, args.model, steps=10**9, log_every=args.log_every)
    state = jax.block_until_ready(fitter.init([0]))
    start = time.perf_counter()
    state, _ = jax.block_until_ready(fitter.train_chunk(state))
    first_s = time.perf_counter() - start
    times = []
    with timed_section(args) as cap:
        began = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - began < cap and len(times) < 50):
            start = time.perf_counter()
            state, loss = jax.block_until_ready(fitter.train_chunk(state))
            times.append(time.perf_counter() - start)
    steady = statistics.median(times)
    return {
        "part": "fit",
        "model": args.model,
        "horizon": args.horizon,
        "batch": fitter.batch,
        "first_chunk_s": round(first_s, 2),
        "chunks": len(times),
        "steps_per_s": round(args.log_every / steady, 1),
        "step_ms": round(steady / args.log_every * 1e3, 3),
        "train_loss": round(float(np.asarray(loss)[0]), 5),
        **device_memory(),
    }


def relative(a, b) -> dict:
    """Relative L2 distance of two gradient trees and their cosine."""
    flat = lambda t: jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(t)])
    a, b = flat(a).astype(jnp.float32), flat(b).astype(jnp.float32)
    return {
        "rel_l2": float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)),
        "cosine": float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b))),
        "norm": float(jnp.linalg.norm(b)),
    }


def precision(args) -> dict:
    """Gradients at the default matmul precision against ``highest`` (see the module docstring)."""
    task = make_task("cancer", args.horizon)
    episodes = collect(task, random_controller(task), 64, jax.random.key(0))
    obs, act = jnp.asarray(episodes.observations), jnp.asarray(episodes.actions)
    model = (
        model_spec(args.model)
        .build(task.state_size, task.action_size, task.horizon, key=jax.random.key(0))
        .with_normalizers(episodes.observations)
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)
    tx = optim.adam(1e-3)
    # A model a little way into training (its gradient is then not the initial one's).
    step = jax.jit(lambda p, o: model_step(p, o, static, tx, obs, act)[:2])
    opt = tx.init(params)
    for _ in range(args.fit_steps):
        params, opt = step(params, opt)
    model_grad = lambda p: jax.grad(lambda q: model_step(q, opt, static, tx, obs, act)[2])(p)
    policy = build_policy(
        "mlp", task.obs_size, task.action_size, task.horizon, key=jax.random.key(1)
    ).with_normalizer(episodes.observations[0])
    p_params, p_static = eqx.partition(policy, eqx.is_inexact_array)
    fitted = eqx.combine(params, static)
    obs0 = obs[:16, 0]
    pg = lambda p: policy_gradient(p, p_static, fitted, task, obs0, jax.random.key(2), 0.0, True)[0]
    out = {}
    for name, fn, x in (("model_update", model_grad, params), ("policy_update", pg, p_params)):
        grads = {}
        for level in ("default", "highest"):
            with jax.default_matmul_precision(None if level == "default" else level):
                f = jax.jit(fn)
                grads[level] = jax.block_until_ready(f(x))
                grads[level + "_ms"] = round(median_seconds(f, x) * 1e3, 2)
        out[name] = {
            **relative(grads["default"], grads["highest"]),
            "default_ms": grads["default_ms"],
            "highest_ms": grads["highest_ms"],
        }
    return {"part": "precision", "model": args.model, "horizon": args.horizon, **out}


def tests_row(log: str) -> dict:
    """What pytest's verbose log says: each outcome's count, the tests that did not pass, and
    pytest's own last line (absent when it was stopped before the end)."""
    outcomes = re.findall(r"\b(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b\s+(\S+::\S+)", log)
    counts = {o: sum(1 for x, _ in outcomes if x == o) for o in sorted({x for x, _ in outcomes})}
    last = re.findall(r"^=+ (.*(?:passed|failed|error).*) =+$", log, re.MULTILINE)
    summary = last[-1] if last else f"stopped before the end: {counts}"
    bad = sorted({t for o, t in outcomes if o in ("FAILED", "ERROR")})
    return {"part": "tests", "counts": counts, "not_passed": bad, "summary": summary}


# ---------------------------------------------------------------------------------- the report


def report(path: str) -> str:
    rows = [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]
    lines = []
    for r in (r for r in rows if r["part"] == "device"):
        rates = next(v for k, v in r.items() if k.startswith("matmul_"))
        size = next(k for k in r if k.startswith("matmul_")).split("_")[1]
        lines.append(
            f"Device: {r['device']} ({r['platform']}, {r['device_count']} device(s), "
            f"{r['cores']} host cores), memory limit {r['device_limit_mib']} MiB; jax "
            f"{r['versions']['jax']}, jaxlib {r['versions']['jaxlib']}, Python {r['python']}."
        )
        lines.append(
            f"float32 matmul of {size}x{size}: {rates['default']} TFLOP/s at the default "
            f"precision, {rates['highest']} at highest."
        )
        lines.append("")
    online_rows = [r for r in rows if r["part"] == "online"]
    if online_rows:
        lines.append(
            "| model | seeds | members | preset | precision | compile s | period ms | run s | done "
            "| final return (mean) | device peak MiB |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in online_rows:
            done = "yes" if r["completed"] else f"{r['periods_done']}/{r['periods']} (projected)"
            lines.append(
                f"| {r['model']} | {r['seeds']} | {r.get('ensemble', 1)} | {r['preset']} | "
                f"{r['matmul_precision']} | "
                f"{r['init_s'] + r['first_chunk_s']:.1f} | {r['updating_period_ms']} | "
                f"{r['run_s']} | {done} | {r['final_return_mean']} | {r['device_peak_mib']} |"
            )
        lines.append("")
    fit_rows = [r for r in rows if r["part"] == "fit"]
    if fit_rows:
        lines += ["| fit-model | steps/s | ms/step | compile s | device peak MiB |"]
        lines += ["|---|---|---|---|---|"]
        for r in fit_rows:
            lines.append(
                f"| {r['model']} | {r['steps_per_s']} | {r['step_ms']} | {r['first_chunk_s']} | "
                f"{r['device_peak_mib']} |"
            )
        lines.append("")
    for r in (r for r in rows if r["part"] == "precision"):
        for name in ("model_update", "policy_update"):
            g = r[name]
            lines.append(
                f"{r['model']} {name} gradient, default vs highest precision: relative L2 "
                f"{g['rel_l2']:.2e}, cosine {g['cosine']:.6f}; {g['default_ms']} ms vs "
                f"{g['highest_ms']} ms."
            )
        lines.append("")
    for r in (r for r in rows if r["part"] == "tests"):
        lines.append(f"Tests on the device: {r['summary']}")
        lines += [f"- not passed: {t}" for t in r["not_passed"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True)
    common.add_argument("--lock", default=None)
    common.add_argument("--horizon", type=int, default=100)
    common.add_argument("--cap", type=float, default=60.0, help="seconds of the timed loop")
    common.add_argument("--deadline", type=float, default=None, help="Unix time: loops end by it")
    p = sub.add_parser("device", parents=[common])
    p.add_argument("--matmul", type=int, default=4096)
    p = sub.add_parser("online", parents=[common])
    p.add_argument("--model", default="awm-transformer")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--preset", default="paper")
    p.add_argument("--env-steps", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--seed-mode", default="vmap")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--pessimism", type=float, default=1.0)
    p = sub.add_parser("fit", parents=[common])
    p.add_argument("--model", default="awm-transformer")
    p.add_argument("--episodes", type=int, default=512)
    p.add_argument("--log-every", type=int, default=50)
    p = sub.add_parser("precision", parents=[common])
    p.add_argument("--model", default="awm-transformer")
    p.add_argument("--fit-steps", type=int, default=50)
    p = sub.add_parser("tests")
    p.add_argument("--log", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("results")
    args = parser.parse_args(argv)
    if args.part == "report":
        print(report(args.results), end="")
        return
    if args.part == "tests":
        with open(args.out, "a") as f:
            f.write(json.dumps(tests_row(Path(args.log).read_text())) + "\n")
        return
    row = {"device": device, "online": online, "fit": fit, "precision": precision}[args.part](args)
    write(args.out, row)


if __name__ == "__main__":
    main()
