"""awmctl: policy learning by backpropagation through world models (Ma et al., ICML 2024).

The public Python API, layer by layer (each imports only the ones above it in this list):

* tasks: :class:`Task` and its registry (:func:`make_task`, :func:`register`);
* models and policies: pure Equinox modules (:class:`AbstractWorldModel`, the specs table
  :data:`MODEL_SPECS`, :func:`build_model`, :class:`Ensemble`; :class:`Policy`,
  :func:`build_policy`);
* rollouts: :func:`collect`, :func:`imagined_return`, :func:`true_return`, :class:`EpisodeReplay`;
* algorithms: :class:`ModelFit`, :class:`BPO`, :class:`OnlineBPO`, :class:`SAC`, :class:`OnlineDT`
  (config -> init -> run_chunk),
  trained to the end by :func:`run`, which keeps each seed's best parameters (:class:`BestSoFar`);
* docs/python.md shows a whole pipeline.
* artifacts: saving and loading datasets, models and policies.
"""

__version__ = "0.1.0"

from awmctl.algorithms import (
    BPO,
    SAC,
    Algorithm,
    BestSoFar,
    BPOConfig,
    FitConfig,
    ModelFit,
    OnlineBPO,
    OnlineConfig,
    OnlineDT,
    OnlineDTConfig,
    SACConfig,
    model_step,
    policy_step,
    run,
    split_episodes,
)
from awmctl.artifacts import (
    load_dataset,
    load_model,
    load_policy,
    save_dataset,
    save_model,
    save_policies,
)
from awmctl.errors import AwmctlError, BadInputError, RunFailedError
from awmctl.models import (
    MODEL_SPECS,
    AbstractWorldModel,
    ActionsWorldModel,
    Ensemble,
    HistoryWorldModel,
    MarkovModel,
    ModelSpec,
    SimulatorModel,
    build_model,
    imagine,
    model_spec,
)
from awmctl.policies import (
    POLICIES,
    DecisionTransformer,
    MarkovPolicy,
    MLPPolicy,
    OpenLoopPolicy,
    Policy,
    QNetwork,
    build_policy,
)
from awmctl.rollouts import (
    EpisodeReplay,
    batched_rollout,
    collect,
    constant_controller,
    imagined_return,
    member_returns,
    random_controller,
    true_return,
)
from awmctl.tasks import (
    Episode,
    Task,
    TaskInfo,
    make_task,
    open_loop_return,
    parse_task_params,
    register,
    rollout,
    task_names,
    with_horizon,
)

__all__ = [
    "BPO",
    "MODEL_SPECS",
    "POLICIES",
    "SAC",
    "AbstractWorldModel",
    "ActionsWorldModel",
    "Algorithm",
    "AwmctlError",
    "BPOConfig",
    "BadInputError",
    "BestSoFar",
    "DecisionTransformer",
    "Ensemble",
    "Episode",
    "EpisodeReplay",
    "FitConfig",
    "HistoryWorldModel",
    "MLPPolicy",
    "MarkovModel",
    "MarkovPolicy",
    "ModelFit",
    "ModelSpec",
    "OnlineBPO",
    "OnlineConfig",
    "OnlineDT",
    "OnlineDTConfig",
    "OpenLoopPolicy",
    "Policy",
    "QNetwork",
    "RunFailedError",
    "SACConfig",
    "SimulatorModel",
    "Task",
    "TaskInfo",
    "__version__",
    "batched_rollout",
    "build_model",
    "build_policy",
    "collect",
    "constant_controller",
    "imagine",
    "imagined_return",
    "load_dataset",
    "load_model",
    "load_policy",
    "make_task",
    "member_returns",
    "model_spec",
    "model_step",
    "open_loop_return",
    "parse_task_params",
    "policy_step",
    "random_controller",
    "register",
    "rollout",
    "run",
    "save_dataset",
    "save_model",
    "save_policies",
    "split_episodes",
    "task_names",
    "true_return",
    "with_horizon",
]
