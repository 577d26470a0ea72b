"""The products-alone benchmark helper (benchmarks/products_alone.py): which products a function
runs and how many FLOPs they are, against counts worked out by hand."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import products_alone


def _function(x, w, v):
    # One [8, 5] x [5, 3] product per step of a 7-step scan, one batched product after it,
    # and the same shapes again through a nested jit (counted with the first).
    def step(carry, row):
        return carry, row @ w

    _, ys = jax.lax.scan(step, 0.0, x)  # x: [7, 8, 5] -> ys [7, 8, 3]
    batched = jnp.einsum("bij,bjk->bik", ys, v)  # [7, 8, 3] x [7, 3, 2]
    again = jax.jit(lambda a, b: a @ b)(x[0], w)
    return batched, again


ARGS = (jnp.ones((7, 8, 5)), jnp.ones((5, 3)), jnp.ones((7, 3, 2)))


def test_products_are_counted_once_per_scan_iteration_and_nested_call():
    counts = products_alone.products(_function, *ARGS)
    by_shapes = {(p[0], p[1]): n for p, n in counts.items()}
    assert by_shapes == {((8, 5), (5, 3)): 8, ((7, 8, 3), (7, 3, 2)): 1}


def test_flops_of_plain_and_batched_products():
    counts = products_alone.products(_function, *ARGS)
    flop = {(p[0], p[1]): products_alone.product_flop(p) for p in counts}
    assert flop[((8, 5), (5, 3))] == 2 * 8 * 5 * 3
    assert flop[((7, 8, 3), (7, 3, 2))] == 2 * 7 * 8 * 3 * 2


def test_summary_adds_every_product_over_its_count():
    def two_products(x, w):  # 3 x ([256, 128] x [128, 64]) in a scan, then [256, 64] x [64, 32]
        ys = jax.lax.scan(lambda c, row: (c, row @ w), 0.0, x)[1]
        return ys[-1] @ w[:64, :32]

    counts = products_alone.products(two_products, jnp.ones((3, 256, 128)), jnp.ones((128, 64)))
    # Made-up timings (2 ms for each of the 3 big products, 1 ms for the small one), so that
    # the sums can be worked out by hand.
    seconds = {3: 2e-3, 1: 1e-3}
    row = products_alone.summary([(p, n, seconds[n]) for p, n in counts.items()])
    gflop = (3 * 2 * 256 * 128 * 64 + 2 * 256 * 64 * 32) / 1e9
    assert row["products_alone_ms"] == pytest.approx(3 * 2.0 + 1.0)
    assert row["products_gflop"] == pytest.approx(gflop, abs=1e-4)
    assert row["products_alone_gflops"] == pytest.approx(gflop / 7e-3, abs=0.1)
    assert row["distinct_products"] == 2


def test_each_product_is_timed_alone():
    row = products_alone.products_alone(
        lambda a, b: a @ b, jnp.ones((256, 128)), jnp.ones((128, 64))
    )
    assert row["distinct_products"] == 1 and row["products_alone_ms"] > 0


def test_a_while_loop_is_refused_since_its_trip_count_is_unknown():
    def looped(x, w):
        return jax.lax.while_loop(lambda c: jnp.sum(c) < 100.0, lambda c: c @ w, x)

    with pytest.raises(ValueError, match="trip count"):
        products_alone.products(looped, jnp.ones((4, 4)), jnp.eye(4))
