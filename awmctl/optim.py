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

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update)
