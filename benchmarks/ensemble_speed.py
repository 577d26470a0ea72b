"""What an ensemble of world models costs: one model update and one policy update through K
members, the members vectorised (as awmctl runs them) or one after another in the compiled
program (``lax.map``, measured slower on a CPU and so not used).

Run: .venv/bin/python benchmarks/ensemble_speed.py [--models awm-lstm,awm-transformer]
     [--members 1,2,3,5] [--mappings sequential,vmap] [--repeats 5]
     [--out benchmarks/results/ensemble_speed.jsonl] [--redo]

Each row: one (model, K, mapping) on CANCER at H = 100, as online BPO runs them: the model update
(64 whole episodes per member, each member its own batch; ten updates in one compiled scan, per
update) and the policy update (16 imagined episodes through every member, the objective their
lower confidence bound: a BPO chunk of ten updates, per update), medians of --repeats calls after
one that compiles, in milliseconds, and their ratio to one model's. One JSON line per row is
appended to --out, tagged with the machine; a row already there for this machine is skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
from online_speed import machine  # benchmarks/, on the path when this script runs

from awmctl import BPO, BPOConfig, collect, make_task, model_spec, optim, random_controller
from awmctl.algorithms import model_step
from awmctl.algorithms.fit import batch_indices
from awmctl.models import Ensemble, ensemble

UPDATES = 10


def in_sequence(self, fn, *per_member):
    """``Ensemble.map`` as a ``lax.map`` over the members (the alternative measured here): ``fn``
    traced once, on one member rebuilt from its slice of the stacked arrays."""
    if self.size == 1:
        return ensemble._stacked(fn(self.member(0), *ensemble._first(per_member)))
    arrays, static = eqx.partition(self.members, eqx.is_array)
    returned = []

    def one(sliced):
        out_arrays, out_static = eqx.partition(
            fn(eqx.combine(sliced[0], static), *sliced[1]), eqx.is_array
        )
        returned.append(out_static)
        return out_arrays

    return eqx.combine(jax.lax.map(one, (arrays, per_member)), returned[0])


VECTORISED = Ensemble.map


def median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, members: int, mapping: str, repeats: int) -> dict:
    Ensemble.map = in_sequence if mapping == "sequential" else VECTORISED
    task = make_task("cancer", 100)
    episodes = collect(task, random_controller(task), 256, jax.random.key(0))
    obs, act = jnp.asarray(episodes.observations), jnp.asarray(episodes.actions)
    model = (
        model_spec(name)
        .build(1, 1, 100, key=jax.random.key(0), ensemble=members)
        .with_normalizers(episodes.observations)
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)
    tx = optim.adam(1e-3)

    def update(p, o, key):
        idx = batch_indices(key, obs.shape[0], 64, members)
        return model_step(p, o, static, tx, obs[idx], act[idx])[:2]

    keys = jax.random.split(jax.random.key(1), UPDATES)
    loop = jax.jit(lambda p, o: jax.lax.scan(lambda c, k: (update(*c, k), None), (p, o), keys)[0])
    model_s = median_seconds(loop, params, tx.init(params), repeats=repeats) / UPDATES
    pessimism = 1.0 if members > 1 else 0.0
    config = BPOConfig(steps=10**9, log_every=UPDATES, pessimism=pessimism)
    bpo = BPO(task, model, "mlp", episodes.observations[:64], config)
    state = bpo.init([0])
    policy_s = median_seconds(bpo.train_chunk, state, repeats=repeats) / UPDATES
    return {
        "model_update_ms": round(model_s * 1e3, 2),
        "policy_update_ms": round(policy_s * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="awm-lstm,awm-transformer")
    parser.add_argument("--members", default="1,2,3,5")
    parser.add_argument("--mappings", default="sequential,vmap")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/ensemble_speed.jsonl")
    parser.add_argument("--redo", action="store_true")
    args = parser.parse_args()
    where = machine()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    key = lambda r: (
        r["model"],
        r["members"],
        r["mapping"],
        r["machine"]["cpu"],
        r["machine"]["jaxlib"],
    )
    print(
        f"{'model':<17}{'K':>3}{'mapping':>12}{'model ms':>10}{'x one':>7}{'policy ms':>11}"
        f"{'x one':>7}"
    )
    for name in args.models.split(","):
        one = None
        for members in map(int, args.members.split(",")):
            for mapping in args.mappings.split(",") if members > 1 else ["vmap"]:
                row = {"model": name, "members": members, "mapping": mapping, "machine": where}
                done = [r for r in rows if key(r) == key(row)]
                if done and not args.redo:
                    row = done[-1]
                else:
                    row |= measure(name, members, mapping, args.repeats)
                    rows.append(row)
                    with open(out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                one = row if members == 1 else one
                ratio = lambda k, row=row, one=one: f"{row[k] / one[k]:.2f}" if one else "-"
                print(
                    f"{name:<17}{members:>3}{mapping:>12}{row['model_update_ms']:>10.1f}"
                    f"{ratio('model_update_ms'):>7}{row['policy_update_ms']:>11.1f}"
                    f"{ratio('policy_update_ms'):>7}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
