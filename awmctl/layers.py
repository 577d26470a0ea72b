"""Equinox's linear layers applied as ``x @ W^T + b``: one matrix product for every row of ``x``.

``eqx.nn.Linear`` computes ``W @ x`` for one vector; vmapped over a batch (or applied to every
token through ``jax.vmap``) that becomes a product whose result has the feature axis first, which
XLA then transposes back, a copy per layer and per gradient. Written as ``x @ W^T`` the batch
stays the leading axis, the product is one matrix multiplication of the whole batch, and the
same code serves one vector, a ``[T, features]`` matrix or a vmapped batch. The parameters are
Equinox's own, so checkpoints and initialisation do not change.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def dense(linear: eqx.nn.Linear, x: Float[Array, "*rows inp"]) -> Float[Array, "*rows out"]:
    """``linear`` applied to every row of ``x``."""
    return affine(x, linear.weight, linear.bias)


def affine(
    x: Float[Array, "*rows inp"], weight: Float[Array, "out inp"], bias: Float[Array, " out"] | None
) -> Float[Array, "*rows out"]:
    """``x @ weight^T + bias`` for every row of ``x`` (the bias broadcast explicitly: the tests
    forbid implicit rank promotion)."""
    y = x @ weight.T
    return y if bias is None else y + as_row(bias, y)


def as_row(vector: Float[Array, " n"], like: Array) -> Array:
    """``vector`` shaped to broadcast against every row of ``like`` (``[..., n]``): the tests
    forbid implicit rank promotion."""
    return jnp.reshape(vector, (1,) * (like.ndim - 1) + vector.shape)


def mlp(network: eqx.nn.MLP, x: Float[Array, "*rows inp"]) -> Float[Array, "*rows out"]:
    """``network`` (an ``eqx.nn.MLP``) applied to every row of ``x``."""
    for layer in network.layers[:-1]:
        x = network.activation(dense(layer, x))
    return network.final_activation(dense(network.layers[-1], x))


def layer_norm(
    norm: eqx.nn.LayerNorm, x: Float[Array, "*rows features"]
) -> Float[Array, "*rows features"]:
    """``norm`` (an ``eqx.nn.LayerNorm`` over the last axis) applied to every row of ``x``, its
    scale and shift broadcast in place rather than materialised for every row."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.maximum(jnp.var(x, axis=-1, keepdims=True), 0.0)
    out = (x - mean) * jax.lax.rsqrt(variance + norm.eps)
    if norm.weight is not None:
        out = out * as_row(norm.weight, x)
    if norm.bias is not None:
        out = out + as_row(norm.bias, x)
    return out


def embed(
    module: eqx.nn.Linear | eqx.nn.MLP, x: Float[Array, "*rows inp"]
) -> Float[Array, "*rows out"]:
    """A linear or MLP embedding of every row of ``x``."""
    return dense(module, x) if isinstance(module, eqx.nn.Linear) else mlp(module, x)


__all__ = ["affine", "as_row", "dense", "embed", "layer_norm", "mlp"]
