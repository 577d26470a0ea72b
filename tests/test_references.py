"""Score references (R_random, R_opt), their cache, and the score in every training summary."""

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run
from lq_task import LinearQuadratic, optimal_return

import awmctl
from awmctl import analysis
from awmctl.algorithms import references as algo_refs
from awmctl.algorithms.references import ReferenceSettings, compute_references
from awmctl.artifacts import references as cache_refs
from awmctl.models import SimulatorModel
from awmctl.policies import build_policy
from awmctl.tasks import open_loop_return

LQ = "lq_task:LinearQuadratic"
FAST = ReferenceSettings(
    random_episodes=256, shooting_starts=3, shooting_steps=600, shooting_lr=3e-2
)


def random_policy_return(task: LinearQuadratic) -> float:
    """E[return] under u ~ U(-1, 1) (variance 1/3), worked out by hand: E[x_k^2] follows
    m_{k+1} = a^2 m_k + b^2 / 3 from m_0 = x0^2, and each step costs q m_k + r / 3."""
    m, total = task.x0**2, 0.0
    for _ in range(task.horizon):
        total -= task.q * m + task.r / 3
        m = task.a**2 * m + task.b**2 / 3
    return total


def test_references_of_a_linear_quadratic_task_match_the_closed_forms():
    task = LinearQuadratic(horizon=10, a=1.1, b=0.5)
    refs = compute_references(task, FAST)
    # the best plan reaches the Riccati optimum (unconstrained: |u*| < 1 here), random its
    # expectation
    assert refs.opt == pytest.approx(optimal_return(task), rel=1e-3)
    assert refs.random == pytest.approx(random_policy_return(task), rel=0.05)
    assert refs.opt == max(refs.plans) and len(refs.plans) == FAST.shooting_starts
    np.testing.assert_allclose(refs.score([refs.random, refs.opt]), [0.0, 1.0])
    # the best plan's actions are kept: replayed on the task they earn R_opt, and they survive
    # the cache's round trip
    plan = jnp.asarray(refs.plan)
    assert plan.shape == (task.horizon, task.action_size)
    assert float(open_loop_return(task, plan)) == pytest.approx(refs.opt, rel=1e-5)
    assert algo_refs.References.from_dict(json.loads(json.dumps(refs.as_dict()))) == refs
    # through the simulator, a model's view of a plan and of a policy's episode is the truth
    policy = build_policy(
        "mlp", task.obs_size, task.action_size, task.horizon, key=jax.random.key(0)
    )
    view = analysis.model_view(SimulatorModel(task), task, policy, plan)
    assert float(view["plan"]) == pytest.approx(refs.opt, rel=1e-5)
    assert float(view["policy"]) == pytest.approx(float(view["policy_real"]), rel=1e-5)


def test_a_model_hides_the_optimum_only_when_it_scores_the_plan_below_the_policy_short_of_it():
    assert analysis.model_hides_optimum(model_policy=3000.0, model_plan=1446.0, score=0.5)
    assert not analysis.model_hides_optimum(model_policy=3000.0, model_plan=4900.0, score=0.5)
    assert not analysis.model_hides_optimum(model_policy=3000.0, model_plan=1446.0, score=0.97)


def test_a_model_overpromises_when_it_promises_the_policy_more_than_the_task_pays():
    # invasive-plant at H = 100 through the LSTM AWM: promised -18.9, paid -31.9
    span = {"r_random": -35.0, "r_opt": -11.0}
    assert analysis.model_overpromises(-18.9, -31.9, **span, score=-0.8)
    # the model's error within 5% of the span, or pessimistic, or the run well solved: no
    assert not analysis.model_overpromises(-31.0, -31.9, **span, score=-0.8)
    assert not analysis.model_overpromises(-40.0, -31.9, **span, score=-0.8)
    assert not analysis.model_overpromises(-18.9, -31.9, **span, score=0.96)


def test_the_cache_returns_what_was_computed_and_never_computes_twice(tmp_path, monkeypatch):
    task = awmctl.make_task("cancer", 6)
    first = cache_refs.load_or_compute(task, tmp_path, FAST)

    def refuse(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(cache_refs, "compute_references", refuse)
    assert cache_refs.load_or_compute(task, tmp_path, FAST) == first
    # another horizon or parameter is another entry; asking for other settings finds none
    paths = {
        cache_refs.entry_path(t, tmp_path)
        for t in (task, awmctl.make_task("cancer", 7), awmctl.make_task("cancer", 6, {"T": 10.0}))
    }
    assert len(paths) == 3
    assert cache_refs.load_references(awmctl.make_task("cancer", 7), tmp_path, FAST) is None
    assert cache_refs.load_references(task, tmp_path, ReferenceSettings()) is None
    assert cache_refs.load_references(task, tmp_path) == first


def test_editing_a_users_task_file_makes_a_new_entry(tmp_path, monkeypatch):
    source = tmp_path / "my_lq.py"
    shutil.copy(Path(__file__).parent / "lq_task.py", source)
    before = awmctl.make_task(f"{source}:LinearQuadratic", 5)
    path_before = cache_refs.entry_path(before, tmp_path)
    source.write_text(
        source.read_text().replace(
            "return self.a * state + self.b * action",
            "return self.a * state + 0.9 * self.b * action",
        )
    )
    assert (
        cache_refs.task_fingerprint(before) != ""
        and cache_refs.entry_path(before, tmp_path) != path_before
    )


def test_the_same_task_file_in_another_directory_finds_the_same_entry(tmp_path):
    """A checkout elsewhere (or the file given by another path) keeps its cached references: the
    key is the file's content and name, not where it lies."""
    paths = []
    for where in ("here", "there"):
        (tmp_path / where).mkdir()
        shutil.copy(Path(__file__).parent / "lq_task.py", tmp_path / where / "my_lq.py")
        task = awmctl.make_task(f"{tmp_path / where / 'my_lq.py'}:LinearQuadratic", 5)
        paths.append(cache_refs.entry_path(task, tmp_path / "cache"))
    assert paths[0] == paths[1]
    # another horizon is another entry
    other = awmctl.make_task(f"{tmp_path / 'here' / 'my_lq.py'}:LinearQuadratic", 6)
    assert cache_refs.entry_path(other, tmp_path / "cache") != paths[0]


def test_optimize_policy_reports_the_score_once_references_exist(tmp_path):
    common = (
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        LQ,
        "--horizon",
        6,
        "--steps",
        40,
        "--log-every",
        20,
        "--seeds",
        2,
    )
    without = run(*common, "--out", tmp_path / "a", "--json")
    assert without.exit_code == 0, without.stderr
    assert (
        "score" not in json.loads(without.stdout) and "awmctl references --task" in without.stderr
    )

    made = run(
        "references",
        "--task",
        LQ,
        "--horizon",
        6,
        "--starts",
        2,
        "--shooting-steps",
        100,
        "--episodes",
        64,
        "--json",
    )
    assert made.exit_code == 0, made.stderr
    refs = json.loads(made.stdout)
    assert refs["cached"] is False and refs["R_opt"] > refs["R_random"]
    again = run(
        "references",
        "--task",
        LQ,
        "--horizon",
        6,
        "--starts",
        2,
        "--shooting-steps",
        100,
        "--episodes",
        64,
        "--json",
    )
    assert (
        json.loads(again.stdout)["cached"] is True
        and json.loads(again.stdout)["R_opt"] == refs["R_opt"]
    )

    # other settings replace the entry; the summary uses the entry there is
    default = json.loads(
        run(
            "references",
            "--task",
            LQ,
            "--horizon",
            6,
            "--starts",
            2,
            "--shooting-steps",
            50,
            "--episodes",
            64,
            "--json",
        ).stdout
    )
    assert default["cached"] is False
    with_score = run(*common, "--out", tmp_path / "b", "--json")
    summary = json.loads(with_score.stdout)
    scores = [
        (r - default["R_random"]) / (default["R_opt"] - default["R_random"])
        for r in json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[-1])[
            "eval/eval_return"
        ]
    ]
    assert summary["score"] == pytest.approx(np.mean(scores), rel=1e-9)
    assert (summary["R_random"], summary["R_opt"]) == (default["R_random"], default["R_opt"])


def test_reference_settings_are_checked():
    for option, value, says in (
        ("--starts", 0, "--starts must be at least 1"),
        ("--episodes", -1, "--episodes must be at least 1"),
        ("--shooting-lr", "inf", "--shooting-lr must be a positive finite number"),
        ("--shooting-lr", "nan", "--shooting-lr must be a positive finite number"),
    ):
        result = run("references", "--task", "cancer", option, value)
        assert result.exit_code == 2 and says in result.stderr, result.stderr
    with pytest.raises(awmctl.errors.BadInputError):
        algo_refs.ReferenceSettings(shooting_lr=0.0).check()


def test_a_summary_names_one_limit_exploitation_before_a_hidden_optimum():
    from awmctl.cli.optimize_policy import _diagnosis

    summary = {"score": 0.5, "R_random": 0.0, "R_opt": 100.0, "final_return_mean": 50.0}
    # promised 70 for a policy paid 50, the plan scored 40: the policy exploits the model
    exploits = _diagnosis({**summary, "model_policy_return": 70.0, "model_plan_return": 40.0})
    assert len(exploits) == 1 and "exploits the model's errors" in exploits[0]
    # the policy scored about right, the plan below it: the model hides the optimum
    hides = _diagnosis({**summary, "model_policy_return": 51.0, "model_plan_return": 40.0})
    assert len(hides) == 1 and "has not seen the states that plan reaches" in hides[0]
    # well solved, or the plan scored above the policy: nothing to say
    well = {"score": 0.97, "model_policy_return": 70.0, "model_plan_return": 40.0}
    assert _diagnosis({**summary, **well}) == []
    assert _diagnosis({**summary, "model_policy_return": 51.0, "model_plan_return": 90.0}) == []
