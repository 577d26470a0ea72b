"""Rollouts shared by every training loop and analysis: imagination through world models, true
returns and episode collection on tasks, and what online loops need: stepping the real task one
step at a time, and replays of whole episodes or of transitions."""

from awmctl.rollouts.collection import (
    DEFAULT_CHUNK,
    batched_rollout,
    collect,
    collect_chunks,
    constant_controller,
    episode_keys,
    random_controller,
)
from awmctl.rollouts.imagination import (
    closed_loop_observations,
    direct_path_return,
    imagined_return,
    member_returns,
    predicted_return,
    predicted_rewards,
    stepwise_return,
    true_return,
)
from awmctl.rollouts.interaction import Acted, Stepped, act, advance, explore, first_states
from awmctl.rollouts.replay import EpisodeReplay, TransitionReplay

__all__ = [
    "DEFAULT_CHUNK",
    "Acted",
    "EpisodeReplay",
    "Stepped",
    "TransitionReplay",
    "act",
    "advance",
    "batched_rollout",
    "closed_loop_observations",
    "collect",
    "collect_chunks",
    "constant_controller",
    "direct_path_return",
    "episode_keys",
    "explore",
    "first_states",
    "imagined_return",
    "member_returns",
    "predicted_return",
    "predicted_rewards",
    "random_controller",
    "stepwise_return",
    "true_return",
]
