"""Training algorithms, one shape each (:class:`~awmctl.algorithms.base.Algorithm`): model
fitting, offline BPO, online BPO (Algorithm 1), and the model-free baselines SAC and Online-DT."""

from awmctl.algorithms.base import (
    SEED_MODES,
    Algorithm,
    BestSoFar,
    LearningCurve,
    default_seed_mode,
    over_seeds,
    run,
    shard_seeds,
)
from awmctl.algorithms.bpo import (
    BPO,
    BPOConfig,
    BPOState,
    policy_gradient,
    policy_objective,
    policy_step,
)
from awmctl.algorithms.fit import (
    FitConfig,
    FitState,
    ModelFit,
    model_step,
    normalised_mse,
    open_loop_metrics,
    seed_keys,
    split_episodes,
)
from awmctl.algorithms.online import OnlineBPO, OnlineConfig, OnlineState
from awmctl.algorithms.online_dt import OnlineDT, OnlineDTConfig, OnlineDTState
from awmctl.algorithms.sac import SAC, SACConfig, SACState

__all__ = [
    "BPO",
    "SAC",
    "SEED_MODES",
    "Algorithm",
    "BPOConfig",
    "BPOState",
    "BestSoFar",
    "FitConfig",
    "FitState",
    "LearningCurve",
    "ModelFit",
    "OnlineBPO",
    "OnlineConfig",
    "OnlineDT",
    "OnlineDTConfig",
    "OnlineDTState",
    "OnlineState",
    "SACConfig",
    "SACState",
    "default_seed_mode",
    "model_step",
    "normalised_mse",
    "open_loop_metrics",
    "over_seeds",
    "policy_gradient",
    "policy_objective",
    "policy_step",
    "run",
    "seed_keys",
    "shard_seeds",
    "split_episodes",
]
