"""The tanh-squashed diagonal Gaussian that every stochastic policy here samples from."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.policies.base import MIN_SCALE

#: Replayed actions are pulled this far inside (-1, 1) before ``atanh``: uniform random warm-up
#: actions reach the bounds, where the log-density is infinite.
ACTION_MARGIN = 1e-4


def scale_of(raw: Float[Array, "*b act"]) -> Float[Array, "*b act"]:
    return jax.nn.softplus(raw) + MIN_SCALE


def _log_density(z: Array, scale: Array, pre: Array) -> Float[Array, "*b"]:
    """log N(pre; mean, scale) - log |d tanh / d pre| with ``z = (pre - mean) / scale``; the
    latter written stably as 2 (log 2 - pre - softplus(-2 pre))."""
    log_normal = -0.5 * jnp.square(z) - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre))
    return jnp.sum(log_normal - log_det, axis=-1)


def sample(
    mean: Float[Array, "*b act"], scale: Float[Array, "*b act"], key: PRNGKeyArray
) -> tuple[Float[Array, "*b act"], Float[Array, "*b"]]:
    """A reparameterised action ``tanh(mean + scale * eps)`` and its log-probability."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    pre = mean + scale * eps
    return jnp.tanh(pre), _log_density(eps, scale, pre)


def log_prob(
    mean: Float[Array, "*b act"], scale: Float[Array, "*b act"], action: Float[Array, "*b act"]
) -> Float[Array, "*b"]:
    """Log-density of a given action (e.g. a replayed one) in (-1, 1)."""
    pre = jnp.arctanh(jnp.clip(action, -1.0 + ACTION_MARGIN, 1.0 - ACTION_MARGIN))
    return _log_density((pre - mean) / scale, scale, pre)


__all__ = ["ACTION_MARGIN", "log_prob", "sample", "scale_of"]
