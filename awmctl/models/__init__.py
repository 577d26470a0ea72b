"""The world-model zoo: every family behind one interface (:mod:`awmctl.models.base`) and one
table of specs (:mod:`awmctl.models.zoo`)."""

from awmctl.backbones import AbstractBackbone, Recurrent, Transformer, make_backbone
from awmctl.models.base import AbstractWorldModel, Carry, check_context, imagine
from awmctl.models.ensemble import (
    Ensemble,
    build_ensemble,
    check_ensemble_size,
    disagreement,
    ensemble_record,
    member_keys,
    members_of,
)
from awmctl.models.markov import MarkovModel
from awmctl.models.one_step import AbstractOneStepModel
from awmctl.models.sequence import AbstractSequenceModel, ActionsWorldModel, HistoryWorldModel
from awmctl.models.simulator import SimulatorModel
from awmctl.models.zoo import (
    MODEL_SPECS,
    SIMULATOR,
    TRAINABLE,
    ModelSpec,
    PolicyInputGrad,
    build_model,
    model_spec,
)

__all__ = [
    "MODEL_SPECS",
    "SIMULATOR",
    "TRAINABLE",
    "AbstractBackbone",
    "AbstractOneStepModel",
    "AbstractSequenceModel",
    "AbstractWorldModel",
    "ActionsWorldModel",
    "Carry",
    "Ensemble",
    "HistoryWorldModel",
    "MarkovModel",
    "ModelSpec",
    "PolicyInputGrad",
    "Recurrent",
    "SimulatorModel",
    "Transformer",
    "build_ensemble",
    "build_model",
    "check_context",
    "check_ensemble_size",
    "disagreement",
    "ensemble_record",
    "imagine",
    "make_backbone",
    "member_keys",
    "members_of",
    "model_spec",
]
