"""Optimisers used for models and policies (Optax), in one place.

Every optimiser skips an update whose gradients are not finite (``optax.apply_if_finite``): the
parameters keep their last finite values and the skip is counted in the optimiser's state, where
:func:`skipped_updates` reads it. Deciding when skips mean divergence is the training loop's
business (:func:`awmctl.algorithms.run`).
"""

from __future__ import annotations

import jax
import numpy as np
import optax

#: never apply a non-finite update, however many come in a row (optax applies them after
#: ``max_consecutive_errors``)
_NEVER = 2**31 - 1


def adam(lr: float, clip_norm: float | None = None) -> optax.GradientTransformation:
    """Adam, optionally after global-norm gradient clipping.

    Optax's bias correction mixes its int32 step counter with Python floats, which JAX's strict
    dtype-promotion mode (on in our tests, to catch silent promotion in *our* code) rejects; the
    update is therefore traced under standard promotion.
    """
    tx = optax.adam(lr)
    if clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
    return _guarded(tx)


def lamb(
    lr: float, weight_decay: float, warmup: int, clip_norm: float
) -> optax.GradientTransformation:
    """LAMB (the Online Decision Transformer's optimiser): global-norm clipping, a learning rate
    that rises linearly over ``warmup`` updates, and weight decay on weight matrices only (not
    on biases, LayerNorm scales or the statistics a module stores)."""
    schedule = optax.linear_schedule(lr / max(warmup, 1), lr, max(warmup, 1))
    decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)
    tx = optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.lamb(schedule, weight_decay=weight_decay, mask=decay_mask),
    )
    return _guarded(tx)


def skipped_updates(state: object) -> tuple[np.ndarray, np.ndarray]:
    """``(total, in_a_row)``: updates skipped for non-finite gradients, summed over every
    optimiser in ``state`` (any pytree; arrays keep their leading seed axis)."""
    guards = [
        x
        for x in jax.tree_util.tree_leaves(
            state, is_leaf=lambda x: isinstance(x, optax.ApplyIfFiniteState)
        )
        if isinstance(x, optax.ApplyIfFiniteState)
    ]
    total = sum((np.asarray(g.total_notfinite, np.int64) for g in guards), np.zeros((), np.int64))
    in_a_row = (
        np.max([np.asarray(g.notfinite_count, np.int64) for g in guards], axis=0)
        if guards
        else np.zeros((), np.int64)
    )
    return total, in_a_row


def _guarded(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` that skips non-finite updates, traced under standard dtype promotion."""
    tx = optax.apply_if_finite(tx, _NEVER)

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update)
