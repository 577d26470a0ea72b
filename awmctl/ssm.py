"""A diagonal linear recurrence with complex eigenvalues, in real arithmetic (the LRU/S5 family).

``h_t = lambda * h_{t-1} + b_t`` per state channel, with ``lambda`` complex and ``|lambda| < 1``.
Over a whole sequence it is an associative scan (``jax.lax.associative_scan``: O(log T) deep, no
T-step loop); in imagination it is one multiply-add per step with a constant-size state.

Complex numbers are carried as (real, imaginary) pairs of real arrays: the parameters stay real
(Optax, Orbax and the shape checks see float arrays), and no complex dtype meets the strict
dtype promotion the tests run under.

The eigenvalues are parametrised as in the LRU (Orvieto et al., 2023): ``lambda = exp(-(exp(nu)
+ eps) + i exp(theta))``, so ``|lambda| = exp(-(exp(nu) + eps)) < 1`` for every finite ``nu``,
whatever a large learning rate does to it (``eps`` keeps it below 1 in float32 too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

#: the least decay: |lambda| <= exp(-1e-4) even where exp(nu) underflows to 0
MIN_DECAY = 1e-4

Pair = tuple[Array, Array]  # (real, imaginary) parts of one complex array


def eigenvalues(
    nu_log: Float[Array, " state"], theta_log: Float[Array, " state"]
) -> tuple[Float[Array, " state"], Float[Array, " state"]]:
    """``lambda``'s real and imaginary parts from its log-log modulus and log phase."""
    modulus = jnp.exp(-(jnp.exp(nu_log) + MIN_DECAY))
    phase = jnp.exp(theta_log)
    return modulus * jnp.cos(phase), modulus * jnp.sin(phase)


def complex_product(a: Pair, b: Pair) -> Pair:
    """Complex product of two (real, imaginary) pairs."""
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def _scan(lam: Pair, inputs: Pair) -> Pair:
    """Every ``h_t = lam * h_{t-1} + inputs_t`` from ``h_{-1} = 0``, as one associative scan.

    The scan's elements are the affine maps ``h -> a h + b``; composing an earlier map with a
    later one gives ``(a2 a1, a2 b1 + b2)``, which is associative.
    """
    steps = inputs[0].shape[0]
    a = (
        jnp.broadcast_to(lam[0], (steps, *lam[0].shape)),
        jnp.broadcast_to(lam[1], (steps, *lam[1].shape)),
    )

    def compose(earlier, later):
        (a1r, a1i, b1r, b1i), (a2r, a2i, b2r, b2i) = earlier, later
        ar, ai = complex_product((a2r, a2i), (a1r, a1i))
        br, bi = complex_product((a2r, a2i), (b1r, b1i))
        return ar, ai, br + b2r, bi + b2i

    _, _, h_re, h_im = jax.lax.associative_scan(compose, (*a, *inputs))
    return h_re, h_im


@jax.custom_vjp
def diagonal_scan(
    lam: Pair, inputs: tuple[Float[Array, "T state"], Float[Array, "T state"]]
) -> tuple[Float[Array, "T state"], Float[Array, "T state"]]:
    """Every ``h_t = lam * h_{t-1} + inputs_t`` from ``h_{-1} = 0``: one associative scan
    forward, and one backward (below) instead of autodiff's pass through every level of the
    scan's tree."""
    return _scan(lam, inputs)


def _scan_forward(lam: Pair, inputs: Pair) -> tuple[Pair, tuple[Pair, Pair]]:
    h = _scan(lam, inputs)
    return h, (lam, h)


def _scan_backward(saved: tuple[Pair, Pair], cotangent: Pair) -> tuple[Pair, Pair]:
    """The adjoint of a linear recurrence is the same recurrence run backwards in time with the
    conjugate eigenvalue. With ``G = dL/dRe + i dL/dIm`` of each complex quantity:
    ``G_b_t = Gh_t = G_t + conj(lam) Gh_{t+1}`` and ``G_lam = sum_t Gh_t conj(h_{t-1})``."""
    lam, h = saved
    reverse = lambda x: jnp.flip(x, axis=0)
    conj = (lam[0], -lam[1])
    g_re, g_im = _scan(conj, (reverse(cotangent[0]), reverse(cotangent[1])))
    g_re, g_im = reverse(g_re), reverse(g_im)
    before = lambda x: jnp.concatenate([jnp.zeros_like(x[:1]), x[:-1]])
    p_re, p_im = before(h[0]), before(h[1])  # h_{t-1}, with h_{-1} = 0
    d_lam = (jnp.sum(g_re * p_re + g_im * p_im, axis=0), jnp.sum(g_im * p_re - g_re * p_im, axis=0))
    return d_lam, (g_re, g_im)


diagonal_scan.defvjp(_scan_forward, _scan_backward)


def diagonal_step(
    lam: Pair,
    h: tuple[Float[Array, " state"], Float[Array, " state"]],
    inputs: tuple[Float[Array, " state"], Float[Array, " state"]],
) -> tuple[Float[Array, " state"], Float[Array, " state"]]:
    """One step of the same recurrence: ``lam * h + inputs``."""
    re, im = complex_product(lam, h)
    return re + inputs[0], im + inputs[1]


__all__ = ["MIN_DECAY", "complex_product", "diagonal_scan", "diagonal_step", "eigenvalues"]
