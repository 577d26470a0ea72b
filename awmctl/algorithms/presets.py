"""Named sets of BPO's policy-optimiser settings: ``converged`` (awmctl's defaults) and
``paper`` (the paper's budget, as its authors' code runs it). A preset fills only what the user
did not give; the preset's name is recorded with the run's configuration.

Why the defaults differ from the paper (docs/results.md, section 8, has the measurements): at the
paper's budget (221 policy updates at lr 1e-4 online, 1000 at 1e-4 offline) the policy optimiser,
not the world model, limits the return on problems outside the paper's grid. Policy updates
happen in imagination: they cost compute, no environment steps. The larger step also finds a
fitted model's errors faster, so the converged preset holds the policy back while the model
over-predicts the return of the policy's own fresh episodes (``trust_gate``, online only:
:class:`~awmctl.algorithms.online.OnlineConfig`).
"""

from __future__ import annotations

from typing import Any, Literal

from awmctl.errors import BadInputError

PresetName = Literal["converged", "paper"]
PRESETS: tuple[str, ...] = ("converged", "paper")

#: online BPO (Algorithm 1): OnlineConfig fields
ONLINE: dict[str, dict[str, Any]] = {
    "paper": {
        "policy_lr": 1e-4,
        "policy_updates": 1,
        "entropy": 0.1,
        "trust_gate": 0.0,
        "trust_check": "completed",
        "trust_restore": False,
        "ensemble": 1,
        "pessimism": 0.0,
        "exploration": 0.0,
        "explore_steps": 0,
        "explore_offset": 0.0,
        "trust_bound": False,
        "keep_best": 0.0,
    },
    "converged": {
        "policy_lr": 1e-3,
        "policy_updates": 4,
        "entropy": 0.0,
        "trust_gate": 0.5,
        "trust_check": "completed",
        "trust_restore": False,
        "ensemble": 1,
        "pessimism": 0.0,
        "exploration": 0.0,
        "explore_steps": 0,
        "explore_offset": 0.0,
        "trust_bound": False,
        "keep_best": 0.0,
    },
}
#: offline BPO: BPOConfig fields
OFFLINE: dict[str, dict[str, Any]] = {
    "paper": {"lr": 1e-4, "steps": 1000, "entropy": 0.1, "pessimism": 0.0},
    "converged": {"lr": 1e-3, "steps": 1000, "entropy": 0.0, "pessimism": 0.0},
}


def check_preset(name: str) -> None:
    if name not in PRESETS:
        raise BadInputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")


def preset_values(
    table: dict[str, dict[str, Any]], name: str, given: dict[str, Any]
) -> dict[str, Any]:
    """The preset's values for every field the user left as None, the user's for the rest."""
    check_preset(name)
    return {**table[name], **{k: v for k, v in given.items() if v is not None}}


__all__ = ["OFFLINE", "ONLINE", "PRESETS", "PresetName", "check_preset", "preset_values"]
