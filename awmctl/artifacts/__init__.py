"""Everything awmctl saves and restores: datasets, models, policies and runs (the only user of
:mod:`awmctl.store`, which holds the Orbax and ``meta.json`` mechanics)."""

from awmctl.artifacts.behaviour import PolicySpec, behaviour, parse_policy
from awmctl.artifacts.datasets import (
    DATASET_KIND,
    check_room,
    dataset_bytes,
    load_dataset,
    save_dataset,
    write_dataset,
)
from awmctl.artifacts.models import MODEL_KIND, load_model, model_record, save_model
from awmctl.artifacts.policies import POLICY_KIND, load_policy, save_policies
from awmctl.artifacts.records import TaskChangedError, check_task_unchanged, task_from_meta
from awmctl.artifacts.runs import (
    Output,
    Run,
    check_output_dir,
    jsonable,
    output_dir,
    read_meta,
    read_metrics,
    torn_metrics,
    write_meta,
)
from awmctl.artifacts.tracking import Tracking, check_wandb_available

__all__ = [
    "DATASET_KIND",
    "MODEL_KIND",
    "POLICY_KIND",
    "Output",
    "PolicySpec",
    "Run",
    "TaskChangedError",
    "Tracking",
    "behaviour",
    "check_output_dir",
    "check_room",
    "check_task_unchanged",
    "check_wandb_available",
    "dataset_bytes",
    "jsonable",
    "load_dataset",
    "load_model",
    "load_policy",
    "model_record",
    "output_dir",
    "parse_policy",
    "read_meta",
    "read_metrics",
    "save_dataset",
    "save_model",
    "save_policies",
    "task_from_meta",
    "torn_metrics",
    "write_dataset",
    "write_meta",
]
