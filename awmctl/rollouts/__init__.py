"""Rollouts shared by every training loop and analysis: imagination through world models, true
returns and episode collection on tasks, and the replay of whole episodes of online loops."""

from awmctl.rollouts.collection import (
    DEFAULT_CHUNK,
    batched_rollout,
    collect,
    constant_controller,
    random_controller,
)
from awmctl.rollouts.imagination import (
    closed_loop_observations,
    direct_path_return,
    imagined_return,
    stepwise_return,
    true_return,
)
from awmctl.rollouts.replay import EpisodeReplay

__all__ = [
    "DEFAULT_CHUNK",
    "EpisodeReplay",
    "batched_rollout",
    "closed_loop_observations",
    "collect",
    "constant_controller",
    "direct_path_return",
    "imagined_return",
    "random_controller",
    "stepwise_return",
    "true_return",
]
