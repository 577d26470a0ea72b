"""Optimisers used for models and policies (Optax), in one place."""

from __future__ import annotations

import jax
import optax


def adam(lr: float, clip_norm: float | None = None) -> optax.GradientTransformation:
    """Adam, optionally after global-norm gradient clipping.

    Optax's bias correction mixes its int32 step counter with Python floats, which JAX's strict
    dtype-promotion mode (on in our tests, to catch silent promotion in *our* code) rejects; the
    update is therefore traced under standard promotion.
    """
    tx = optax.adam(lr)
    if clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
    return _standard_promotion(tx)


def lamb(lr: float, weight_decay: float, warmup: int, clip_norm: float) -> optax.GradientTransformation:
    """LAMB (the Online Decision Transformer's optimiser): global-norm clipping, a learning rate
    that rises linearly over ``warmup`` updates, and weight decay on weight matrices only (not
    on biases, LayerNorm scales or the statistics a module stores)."""
    schedule = optax.linear_schedule(lr / max(warmup, 1), lr, max(warmup, 1))
    decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)  # noqa: E731
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), optax.lamb(schedule, weight_decay=weight_decay, mask=decay_mask))
    return _standard_promotion(tx)


def _standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update)
