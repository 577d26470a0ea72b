"""Per-dimension affine normalisation: statistics set from data and stored inside a module.

Models and policies speak raw task units at their boundary and keep the statistics of their
training data as arrays of their own (data, not parameters: gradients never flow into them).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class Normalizer(eqx.Module):
    """``(x - mean) / std`` per dimension."""

    mean: Float[Array, " n"]
    std: Float[Array, " n"]

    @classmethod
    def fit(cls, x: Float[Array, "... n"], min_std: float = 1e-6) -> Normalizer:
        flat = jnp.reshape(x, (-1, x.shape[-1]))
        return cls(jnp.mean(flat, axis=0), jnp.maximum(jnp.std(flat, axis=0), min_std))

    @classmethod
    def identity(cls, n: int) -> Normalizer:
        return cls(jnp.zeros((n,)), jnp.ones((n,)))

    def normalize(self, x: Float[Array, "... n"]) -> Float[Array, "... n"]:
        return (x - like(self.mean, x)) / like(self.std, x)

    def denormalize(self, z: Float[Array, "... n"]) -> Float[Array, "... n"]:
        return z * like(self.std, z) + like(self.mean, z)


def like(stat: Float[Array, " n"], x: Float[Array, "... n"]) -> Float[Array, "... n"]:
    """A per-dimension statistic, gradient-stopped, shaped to broadcast against ``x`` explicitly
    (tests run with rank promotion switched off)."""
    return jnp.reshape(jax.lax.stop_gradient(stat), (1,) * (x.ndim - 1) + stat.shape)


__all__ = ["Normalizer", "like"]
