"""The matrix products of a function, each timed alone on this machine, and their sum.

`online_speed.py` uses it to say how close the world-model update is to this CPU's limit for the
update's own products, which are far smaller than the 1024x1024 reference product (width 48,
heads of 16, 101 tokens) and run at a fraction of its rate even alone.

Every `dot_general` in the function's jaxpr is found (inside scans too, counted once per
iteration), each distinct one is compiled and timed in a loop of many products with fresh
left operands (so that neither dispatch nor the output's allocation is timed), and the times are
summed over the function's products. It is not a strict floor: inside the whole program XLA may
lay a product out differently from how the jaxpr writes it (the Markovian model's update is faster
than its products alone). It says how fast this machine runs products of the function's shapes.

Run alone: .venv/bin/python benchmarks/products_alone.py [--model awm-transformer]
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core

#: A product's operand shapes and dtypes, and its dot_general parameters.
Product = tuple[tuple[int, ...], tuple[int, ...], str, str, Any, Any]


def products(fn, *args) -> collections.Counter[Product]:
    """How many times each distinct matrix product runs in one call of ``fn(*args)``."""
    counts: collections.Counter[Product] = collections.Counter()

    def walk(jaxpr: jax_core.Jaxpr, times: int) -> None:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                lhs, rhs = (v.aval for v in eqn.invars)
                counts[
                    (
                        tuple(lhs.shape),
                        tuple(rhs.shape),
                        str(lhs.dtype),
                        str(rhs.dtype),
                        eqn.params["dimension_numbers"],
                        eqn.params.get("preferred_element_type"),
                    )
                ] += times
                continue
            if eqn.primitive.name == "while":
                raise ValueError(
                    "a while loop's trip count is unknown: products inside it cannot be counted"
                )
            inner = times * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple | list) else (value,):
                    if isinstance(sub, jax_core.ClosedJaxpr):
                        walk(sub.jaxpr, inner)
                    elif isinstance(sub, jax_core.Jaxpr):
                        walk(sub, inner)

    walk(jax.make_jaxpr(fn)(*args).jaxpr, 1)
    return counts


def product_flop(product: Product) -> int:
    lhs, rhs, _, _, ((_, rhs_contract), (_, rhs_batch)), _ = product
    rhs_free = math.prod(
        d for i, d in enumerate(rhs) if i not in rhs_contract and i not in rhs_batch
    )
    return 2 * math.prod(lhs) * rhs_free


def product_seconds(product: Product, repeats: int = 7) -> float:
    """One product's time inside a compiled loop: each iteration multiplies a different left
    operand into the loop's carry, so the output buffer is reused and no call is dispatched."""
    lhs, rhs, lhs_dtype, rhs_dtype, dimension_numbers, preferred = product
    flop = product_flop(product)
    lhs_bytes = math.prod(lhs) * jnp.dtype(lhs_dtype).itemsize
    count = max(2, min(256, int(64e6 // max(lhs_bytes, 1)), int(2e9 // max(flop, 1))))
    key_l, key_r = jax.random.split(jax.random.key(0))
    xs = jax.random.normal(key_l, (count, *lhs), lhs_dtype)
    b = jax.random.normal(key_r, rhs, rhs_dtype)

    def dot(a, b):
        return jax.lax.dot_general(a, b, dimension_numbers, preferred_element_type=preferred)

    out = jax.eval_shape(dot, xs[0], b)
    loop = jax.jit(
        lambda xs, b: jax.lax.scan(
            lambda _, a: (dot(a, b), None), jnp.zeros(out.shape, out.dtype), xs
        )[0]
    )
    jax.block_until_ready(loop(xs, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(loop(xs, b))
        times.append(time.perf_counter() - start)
    return statistics.median(times) / count


def timed_products(fn, *args) -> list[tuple[Product, int, float]]:
    """Every distinct product of one call of ``fn(*args)``: how many times it runs, and its
    seconds when timed alone."""
    return [(p, n, product_seconds(p)) for p, n in products(fn, *args).items()]


def summary(timed: list[tuple[Product, int, float]]) -> dict:
    """The products' FLOPs, and the milliseconds they take when each is timed alone (the sum over
    every product the call runs)."""
    seconds = sum(n * s for _, n, s in timed)
    gflop = sum(n * product_flop(p) for p, n, _ in timed) / 1e9
    return {
        "products_alone_ms": round(seconds * 1e3, 3),
        "products_gflop": round(gflop, 4),
        "products_alone_gflops": round(gflop / seconds, 1),
        "distinct_products": len(timed),
    }


def products_alone(fn, *args) -> dict:
    """:func:`summary` of the products of one call of ``fn(*args)``."""
    return summary(timed_products(fn, *args))


def main() -> None:
    from online_speed import model_update  # the benchmark's update (a sibling script)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="awm-transformer")
    update, args = model_update(parser.parse_args().model)[:2]
    timed = timed_products(update, *args)
    print(f"{'lhs':>18} {'rhs':>16} {'times':>6} {'MFLOP':>8} {'us each':>9} {'GFLOP/s':>8}")
    for p, n, s in sorted(timed, key=lambda row: -row[1] * product_flop(row[0])):
        print(
            f"{p[0]!s:>18} {p[1]!s:>16} {n:>6} {product_flop(p) / 1e6:>8.2f} {s * 1e6:>9.1f}"
            f" {product_flop(p) / s / 1e9:>8.1f}"
        )
    print(summary(timed))


if __name__ == "__main__":
    main()
