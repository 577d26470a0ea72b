"""An ensemble of world models of one kind: K members whose arrays are stacked on a leading axis,
trained together in one compiled update and imagined in together (``vmap`` over the members).

Model-based RL's answer to a model that is wrong where the data never went (PETS, MBPO, MOPO):
members that start from different initialisations and see the data in different orders agree
where the data are and drift apart away from them, so their *disagreement* says where the model
does not know. What a member is (its class, sizes, normalisation) is the member model's own; the
ensemble adds only the axis.

What an ensemble computes is each member's, then averaged: its prediction of an episode is the
members' mean prediction, its open-loop imagination (``start``/``step``) the members' mean
imagined observation (each member carries its own state), and a *return* through it is the mean
of each member's own return (:func:`awmctl.rollouts.imagined_return`: every member rolls the policy
out in its own imagination, PETS' "TS-infinity"), so the reward is applied to each member's states
and never to an average state. :meth:`Ensemble.map` gives the members' values themselves, from
which the algorithms read the disagreement (their standard deviation).

An ensemble of one runs its member unbatched, so it computes exactly what the member computes
alone (a test checks it bit for bit); ``fit-model --ensemble 1`` writes a plain model directory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.models.base import AbstractWorldModel, Carry


def member_keys(key: PRNGKeyArray, size: int) -> jax.Array:
    """One key per member: member 0 gets ``key`` itself (so an ensemble of one is the model that
    ``key`` builds or trains alone), member k > 0 ``fold_in(key, k)``."""
    index = jnp.arange(size)
    folded = jax.vmap(lambda k: jax.random.key_data(jax.random.fold_in(key, k)))(index)
    own = jnp.broadcast_to(jax.random.key_data(key), folded.shape)
    return jax.random.wrap_key_data(jnp.where((index == 0)[:, None], own, folded))


def _first(tree: Any) -> Any:
    """The first row of every array of ``tree`` (the rest left as it is)."""
    return jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, tree)


def _stacked(tree: Any) -> Any:
    """Every array of ``tree`` with a leading axis of one (the rest left as it is)."""
    return jax.tree.map(lambda x: x[None] if eqx.is_array(x) else x, tree)


class Ensemble(AbstractWorldModel):
    """``size`` members of one world-model class, stacked (see the module docstring)."""

    members: AbstractWorldModel  # every array leaf has a leading axis of length ``size``
    size: int = eqx.field(static=True)
    name: str = eqx.field(static=True)
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    max_horizon: int | None = eqx.field(static=True)
    trainable: ClassVar[bool] = True
    #: a return through the ensemble is each member's (:meth:`map`), which takes each member's
    #: own direct path where it has one; the ensemble's own ``start``/``step`` is the mean model
    direct_path: ClassVar[bool] = False

    def __init__(self, members: AbstractWorldModel, size: int):
        if size < 1:
            raise BadInputError(f"an ensemble needs at least one member, got {size}")
        if not members.trainable:
            raise BadInputError(f"{members.name} has nothing to fit: it cannot be an ensemble")
        self.members, self.size = members, size
        self.name = members.name
        self.state_size, self.action_size = members.state_size, members.action_size
        self.max_horizon = members.max_horizon

    def map(self, fn: Callable[..., Any], *per_member: Any) -> Any:
        """``fn(member, *args)`` for every member, stacked on a leading axis of ``size``: the
        arrays of ``per_member`` have a leading member axis (each member its own), anything
        ``fn`` closes over is shared. One member runs unbatched (its exact computation alone),
        several vectorised: on a CPU too, where running them one after another in the compiled
        program (``lax.map``) measured slower (benchmarks/ensemble_speed.py: the transformer
        AWM's model update with 3 members 6.8 times one model's in sequence, 4.3 vectorised)."""
        if self.size == 1:
            return _stacked(fn(self.member(0), *_first(per_member)))
        return eqx.filter_vmap(fn)(self.members, *per_member)

    def member(self, index: int) -> AbstractWorldModel:
        """The ``index``-th member on its own."""
        return jax.tree.map(lambda x: x[index] if eqx.is_array(x) else x, self.members)

    # ------------------------------------------------------------------ the model interface

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: Any = None,
    ) -> Float[Array, "H state"]:
        return jnp.mean(self.map(lambda m: m.predict(states, actions, key=key)), axis=0)

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        return self.map(lambda m: m.start(obs0))

    def step(
        self, carry: Carry, action: Float[Array, " act"]
    ) -> tuple[Carry, Float[Array, " obs"]]:
        carry, obs = self.map(lambda m, c: m.step(c, action), carry)
        # the step index is every member's: carried exactly, not averaged
        return carry, jnp.concatenate([jnp.mean(obs[:, :-1], axis=0), obs[0, -1:]])

    def with_normalizers(self, observations: Float[Array | np.ndarray, "N T obs"]) -> Ensemble:
        data = jnp.asarray(observations)
        return Ensemble(self.map(lambda m: m.with_normalizers(data)), self.size)

    def state_scale(self) -> Float[Array, " state"]:
        # every member normalises with the same data's statistics
        return self.member(0).state_scale()

    def hyperparameters(self) -> dict[str, Any]:
        return self.members.hyperparameters()


def build_ensemble(
    build: Callable[[PRNGKeyArray], AbstractWorldModel], size: int, key: PRNGKeyArray
) -> Ensemble:
    """An ensemble of ``size`` members, member k built by ``build`` from :func:`member_keys`'s
    k-th key (in one vectorised call)."""
    if size == 1:
        return Ensemble(_stacked(build(key)), 1)
    return Ensemble(eqx.filter_vmap(build)(member_keys(key, size)), size)


def members_of(model: AbstractWorldModel) -> int:
    """How many members ``model`` has (1 for a model that is not an ensemble)."""
    return model.size if isinstance(model, Ensemble) else 1


def disagreement(values: Float[Array, "K ..."]) -> Float[Array, "..."]:
    """The members' disagreement about a value: the standard deviation over the member axis
    (0 for one member)."""
    return jnp.std(values, axis=0)


def check_ensemble_size(size: int, model: str | None = None) -> None:
    """Refuse an ensemble size that is not a positive integer, in one line naming the option."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadInputError(f"--ensemble must be a whole number of members, 1 or more, got {size}")
    if size > 1 and model == "simulator":
        raise BadInputError(
            "--ensemble applies to fitted world models; the simulator has nothing to fit"
        )


def ensemble_record(model: AbstractWorldModel) -> Mapping[str, int]:
    """What a model directory's record adds for an ensemble (nothing for one model)."""
    return {"ensemble": model.size} if isinstance(model, Ensemble) else {}


__all__ = [
    "Ensemble",
    "build_ensemble",
    "check_ensemble_size",
    "disagreement",
    "ensemble_record",
    "member_keys",
    "members_of",
]
