"""The LSTM backbone's hand-written backward pass against autodiff of Equinox's own cell."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from awmctl.backbones import Recurrent
from awmctl.lstm import lstm_sequence

WIDTH, T, B = 5, 7, 4


def reference(backbone: Recurrent, tokens):
    """The same LSTM stepped with ``eqx.nn.LSTMCell.__call__`` and differentiated by JAX."""
    zero = jnp.zeros(WIDTH)

    def step(hc, x):
        h, c = backbone.cell(x, hc)
        return (h, c), h

    return jax.lax.scan(step, (zero, zero), tokens)[1]


@pytest.fixture(scope="module")
def setup():
    kb, kt, ky = jax.random.split(jax.random.key(0), 3)
    backbone = Recurrent("lstm", WIDTH, key=kb)
    tokens = jax.random.normal(kt, (B, T, WIDTH))
    targets = jax.random.normal(ky, (B, T, WIDTH))
    return backbone, tokens, targets


def assert_trees_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_forward_equals_equinox_cell(setup):
    backbone, tokens, _ = setup
    np.testing.assert_allclose(
        jax.vmap(backbone)(tokens),
        jax.vmap(lambda x: reference(backbone, x))(tokens),
        rtol=1e-6,
        atol=1e-6,
    )


def test_gradient_of_a_batch_loss_equals_autodiff(setup):
    """The world models' case: one weight shared by a vmapped batch of sequences."""
    backbone, tokens, targets = setup

    def loss(run):
        return lambda m, x: jnp.mean(jnp.square(jax.vmap(lambda s: run(m, s))(x) - targets))

    ours = eqx.filter_grad(loss(lambda m, s: m(s)))(backbone, tokens)
    theirs = eqx.filter_grad(loss(reference))(backbone, tokens)
    assert_trees_close(ours, theirs)
    # and the inputs' gradient (what reaches the actions in a policy update)
    d_ours = jax.grad(lambda x: loss(lambda m, s: m(s))(backbone, x))(tokens)
    d_theirs = jax.grad(lambda x: loss(reference)(backbone, x))(tokens)
    np.testing.assert_allclose(d_ours, d_theirs, rtol=1e-5, atol=1e-7)


def test_per_sequence_gradients_under_vmap_equal_autodiff(setup):
    """vmap of grad: each sequence's own weight gradient, not the batch's sum."""
    backbone, tokens, targets = setup

    def per_sequence(run):
        grad = eqx.filter_grad(lambda m, x, y: jnp.sum(jnp.square(run(m, x) - y)))
        return jax.vmap(grad, in_axes=(None, 0, 0))(backbone, tokens, targets)

    assert_trees_close(per_sequence(lambda m, s: m(s)), per_sequence(reference))


def test_one_weight_per_seed_under_vmap(setup):
    """Seeds vmapped with their own weights, each over a vmapped batch (online BPO's layout)."""
    _, tokens, targets = setup
    seeds = eqx.filter_vmap(lambda k: Recurrent("lstm", WIDTH, key=k))(
        jax.random.split(jax.random.key(1), 3)
    )

    def grads(run):
        loss = lambda m: jnp.mean(jnp.square(jax.vmap(lambda s: run(m, s))(tokens) - targets))
        return eqx.filter_vmap(eqx.filter_grad(loss))(seeds)

    assert_trees_close(grads(lambda m, s: m(s)), grads(reference))


def test_gradient_against_finite_differences():
    k1, k2 = jax.random.split(jax.random.key(2))
    pre, weight = jax.random.normal(k1, (6, 4 * 3)), 0.5 * jax.random.normal(k2, (4 * 3, 3))
    # float32 central differences: a loose tolerance, but a wrong gate or a missing path fails it
    check_grads(
        lambda p, w: jnp.sum(jnp.sin(lstm_sequence(jnp.asarray(p), jnp.asarray(w)))),
        (pre, weight),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-2,
    )
