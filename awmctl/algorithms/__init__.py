"""Training algorithms, one shape each (:class:`~awmctl.algorithms.base.Algorithm`): model
fitting, offline BPO, online BPO (Algorithm 1), and the model-free baselines SAC and Online-DT."""

import dataclasses

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


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """A model-free agent: the algorithm, its config (the paper's settings as defaults) and its
    name in titles."""

    algorithm: type[SAC] | type[OnlineDT]
    config: type[SACConfig] | type[OnlineDTConfig]
    title: str


#: the model-free baselines by name (``optimize-policy --agent``)
AGENT_SPECS: dict[str, AgentSpec] = {
    "sac": AgentSpec(SAC, SACConfig, "SAC"),
    "online-dt": AgentSpec(OnlineDT, OnlineDTConfig, "Online-DT"),
}

__all__ = [
    "AGENT_SPECS",
    "BPO",
    "SAC",
    "SEED_MODES",
    "AgentSpec",
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
