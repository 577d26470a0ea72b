"""Users' own tasks: by import path, file, registration or entry point, in every subcommand."""

import json
import re
import shutil
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run
from lq_task import LinearQuadratic, optimal_return

import awmctl
from awmctl.errors import BadInputError
from awmctl.tasks import registry

LQ = "lq_task:LinearQuadratic"


def test_the_worked_example_runs_end_to_end_and_reaches_the_closed_form_optimum(tmp_path):
    """docs/tasks.md: collect, fit-model, optimize-policy through the fitted model, collect with
    the policy; every later command rebuilds the task from the source recorded in meta.json."""
    assert run("collect", "--task", LQ, "-n", 256, "--out", tmp_path / "d").exit_code == 0
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["task"]["source"] == LQ and meta["task"]["name"] == "linear-quadratic"
    fitted = run(
        "fit-model",
        "--data",
        tmp_path / "d",
        "--model",
        "markov-mlp",
        "--steps",
        300,
        "--log-every",
        100,
        "--out",
        tmp_path / "m",
    )
    assert fitted.exit_code == 0, fitted.stderr
    result = run(
        "optimize-policy",
        "--model",
        tmp_path / "m",
        "--data",
        tmp_path / "d",
        "--steps",
        300,
        "--lr",
        1e-3,
        "--log-every",
        100,
        "--out",
        tmp_path / "p",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # --task may name the fitted model's task as the data was made: by its file (by any path)
    for asked, code in (
        (f"{Path(__file__).parent / 'lq_task.py'}:LinearQuadratic", 0),
        ("cancer", 2),
    ):
        named = run(
            *("optimize-policy", "--model", tmp_path / "m", "--task", asked, "--steps", 2),
            *("--log-every", 2, "--out", tmp_path / f"named{code}"),
        )
        assert named.exit_code == code, named.stderr
    assert "was fitted on linear-quadratic, not cancer" in named.stderr
    best = optimal_return(LinearQuadratic())  # -2.5616 (Riccati); a random policy scores about -43
    assert summary["final_return_mean"] == pytest.approx(best, rel=0.02)
    again = run(
        "collect",
        "--task",
        LQ,
        "-n",
        2,
        "--policy",
        tmp_path / "p",
        "--out",
        tmp_path / "e",
        "--json",
    )
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["mean_return"] == pytest.approx(
        summary["best_return_mean"], rel=1e-5
    )


def test_the_docs_show_the_tested_code():
    docs = (Path(__file__).parents[1] / "docs" / "tasks.md").read_text()
    block = re.search(
        r"```python\n(.*?)```", docs[docs.index("## Your own task") :], re.DOTALL
    ).group(1)
    module = (Path(__file__).parent / "lq_task.py").read_text()
    assert block.strip() == module[: module.index("\n\ndef optimal_return")].strip()


def test_a_task_from_a_file_and_random_resets_from_the_key(tmp_path):
    shutil.copy(Path(__file__).parent / "lq_task.py", tmp_path / "my_tasks.py")
    source = f"{tmp_path / 'my_tasks.py'}:LinearQuadratic"
    out = tmp_path / "d"
    result = run(
        "collect",
        "--task",
        source,
        "--horizon",
        5,
        "-n",
        64,
        "--task-param",
        "x0_noise=0.5",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    episodes, meta = awmctl.load_dataset(out)
    assert meta["task"]["source"] == source and meta["task"]["params"]["x0_noise"] == 0.5
    starts = episodes.observations[:, 0, 0]
    assert 0.3 < starts.std() < 0.7 and abs(starts.mean() - 1.0) < 0.2  # x0 + 0.5 N(0, 1)
    # Later commands rebuild it from the recorded file, and the reset keys come from the seed.
    again = run(
        "collect",
        "--task",
        source,
        "--horizon",
        5,
        "-n",
        64,
        "--task-param",
        "x0_noise=0.5",
        "--out",
        tmp_path / "e",
    )
    assert again.exit_code == 0
    np.testing.assert_array_equal(
        awmctl.load_dataset(tmp_path / "e")[0].observations, episodes.observations
    )
    fitted = run(
        "fit-model",
        "--data",
        out,
        "--model",
        "markov-mlp",
        "--steps",
        2,
        "--log-every",
        1,
        "--out",
        tmp_path / "m",
    )
    assert fitted.exit_code == 0, fitted.stderr


def test_registered_tasks_never_hide_the_built_in_ones():
    info = awmctl.register(LinearQuadratic, "lq-registered")
    try:
        names = awmctl.task_names()
        assert names[:1] == ["cancer"] and "double-pendulum" in names and "lq-registered" in names
        assert awmctl.make_task("lq-registered", 7).horizon == 7 and info.source == LQ
        assert awmctl.make_task("cancer", 5).name == "cancer"
        with pytest.raises(BadInputError, match="is built in"):
            awmctl.register(LinearQuadratic, "cancer")
    finally:
        registry.unregister("lq-registered")
    assert "lq-registered" not in awmctl.task_names()


def test_an_installed_package_provides_tasks_through_the_entry_point_group(tmp_path, monkeypatch):
    dist = tmp_path / "lq_tasks-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lq-tasks\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{awmctl.tasks.ENTRY_POINT_GROUP}]\nlq = {LQ}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "lq" in awmctl.task_names()
    result = run("tasks", "--json")
    rows = {r["name"]: r for r in json.loads(result.stdout)["tasks"]}
    assert (
        rows["lq"]["source"] == LQ
        and rows["lq"]["default_horizon"] == 20
        and rows["cancer"]["source"] is None
    )
    result = run(
        "collect", "--task", "lq", "--horizon", 4, "-n", 3, "--out", tmp_path / "d", "--json"
    )
    assert result.exit_code == 0, result.stderr
    task = awmctl.artifacts.task_from_meta(awmctl.artifacts.read_meta(tmp_path / "d"))
    assert task == LinearQuadratic(horizon=4)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module:Task", "cannot import 'no_such_module'"),
        ("lq_task:Nope", "has no 'Nope'"),
        ("lq_task:optimal_return", "not a subclass of awmctl.Task"),
        ("/nowhere/tasks.py:Task", "does not exist"),
    ],
)
def test_bad_task_sources_are_one_line_errors(tmp_path, spec, message):
    result = run("collect", "--task", spec, "--out", tmp_path / "d")
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1


class Drift(awmctl.Task):
    """x' = x + u, reward -x^2, and no default horizon."""

    horizon: int = eqx.field(static=True)
    name: ClassVar[str] = "drift"
    state_size: ClassVar[int] = 1
    action_size: ClassVar[int] = 1
    dt: ClassVar[float] = 1.0
    state_bounds: ClassVar[tuple[tuple[float, float], ...]] = ((-np.inf, np.inf),)

    @property
    def params(self):
        return {}

    def initial_state(self, key):
        return jnp.zeros((1,))

    def transition(self, state, action, k):
        return state + action

    def reward(self, state, action, k, next_state):
        return -(state[0] ** 2)


def test_a_task_without_a_default_horizon_needs_one():
    awmctl.register(Drift, "drift")
    try:
        with pytest.raises(BadInputError, match="pass --horizon"):
            awmctl.make_task("drift")
        assert awmctl.make_task("drift", 3).horizon == 3
        rows = {r["name"]: r for r in json.loads(run("tasks", "--json").stdout)["tasks"]}
        assert rows["drift"]["default_horizon"] is None and rows["drift"]["params"] == []
        assert run("tasks").exit_code == 0
    finally:
        registry.unregister("drift")


def test_a_users_task_declares_the_domains_of_its_parameters(tmp_path):
    refused = run("collect", "--task", LQ, "--task-param", "r=0", "--out", tmp_path / "d")
    assert (
        refused.exit_code == 2
        and "r=0 for lq_task:LinearQuadratic must be a number > 0" in refused.stderr
    )
    refused = run("collect", "--task", LQ, "--task-param", "a=nan", "--out", tmp_path / "d")
    assert (
        refused.exit_code == 2 and "must be finite" in refused.stderr
    )  # not declared: any finite number
    assert (
        run(
            "collect", "--task", LQ, "--task-param", "a=-2", "-n", 2, "--out", tmp_path / "d"
        ).exit_code
        == 0
    )


BROKEN = """
import jax.numpy as jnp
from lq_task import LinearQuadratic


class VectorReward(LinearQuadratic):
    def reward(self, state, action, k, next_state):
        return -jnp.stack([state[0] ** 2, action[0] ** 2, state[0]])


class WideState(LinearQuadratic):
    def transition(self, state, action, k):
        return jnp.concatenate([state, action])


class Raises(LinearQuadratic):
    def transition(self, state, action, k):
        raise RuntimeError("not written yet")
"""


@pytest.mark.parametrize(
    "cls, says",
    [
        ("VectorReward", "reward returns float32[3], but it must return a float scalar"),
        ("WideState", "transition returns float32[2], but it must return a float vector of 1"),
        ("Raises", "transition failed when traced (RuntimeError: not written yet)"),
    ],
)
def test_a_task_that_breaks_its_contract_is_refused_when_made(tmp_path, cls, says):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    result = run("collect", "--task", f"{path}:{cls}", "-n", 2, "--out", tmp_path / "d")
    assert result.exit_code == 2 and says in result.stderr, result.stderr
    assert f"{cls}" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "d").exists()


NAN_LATER = """
import jax.numpy as jnp
from lq_task import LinearQuadratic


class BlowsUp(LinearQuadratic):
    def transition(self, state, action, k):
        return jnp.where(k >= 3, jnp.nan, state + action)
"""


def test_a_task_whose_steps_are_not_finite_is_refused_at_collection(tmp_path):
    path = tmp_path / "nan_task.py"
    path.write_text(NAN_LATER)
    out = tmp_path / "d"
    result = run("collect", "--task", f"{path}:BlowsUp", "--horizon", 6, "-n", 4, "--out", out)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "episode 0 is not finite from step 3" in result.stderr and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "__pycache__"] == ["nan_task.py"]
