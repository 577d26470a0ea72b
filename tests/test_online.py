"""Online BPO (Algorithm 1): end to end on a tiny budget, resume equals uninterrupted, bad input."""

import json

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import run

from awmctl import algorithms, make_task
from awmctl.algorithms.references import ReferenceSettings
from awmctl.artifacts import load_model, load_policy
from awmctl.artifacts.references import load_or_compute
from awmctl.cli.common import references_cache


def online_args(out, *extra):
    return (
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        8,
        "--model",
        "markov-mlp",
        "--env-steps",
        128,
        "--warmup-steps",
        32,
        "--lr",
        1e-3,
        "--seeds",
        2,
        "--out",
        out,
        *extra,
    )


def test_online_loop_runs_end_to_end_and_resumes_exactly(tmp_path, interrupt_after):
    # references that keep their best plan: the summary reports how the final models score it
    load_or_compute(
        make_task("cancer", 8),
        references_cache(),
        ReferenceSettings(random_episodes=16, shooting_starts=1, shooting_steps=20),
    )
    whole = run(*online_args(tmp_path / "whole", "--json"))
    assert whole.exit_code == 0, whole.stderr
    summary = json.loads(whole.stdout)
    assert summary["online"] and summary["seeds"] == 2 and np.isfinite(summary["final_return_mean"])
    assert summary["trust_gate"] == 0.5 and 0 <= summary["gated_fraction"] <= 1
    assert np.isfinite([summary["model_plan_return"], summary["model_policy_return"]]).all()
    records = [
        json.loads(l) for l in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [32, 64, 96, 128]
    assert records[-1]["train/episodes"] == [16, 16]  # 128 env steps = 16 whole episodes of 8
    model, task, _ = load_model(tmp_path / "whole" / "model")
    assert model.name == "markov-mlp" and task.horizon == 8
    policy, _, _ = load_policy(tmp_path / "whole", "final", seed_index=1)

    undo = interrupt_after(algorithms.OnlineBPO, "run_chunk", 2)
    assert run(*online_args(tmp_path / "resumed")).exit_code == 130
    assert not (tmp_path / "resumed").exists()
    undo()
    resumed = run(*online_args(tmp_path / "resumed"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "Resuming from env step 64" in resumed.stderr
    meta = json.loads((tmp_path / "resumed" / "meta.json").read_text())
    for key in ("model_plan_return", "model_policy_return"):
        assert meta["summary"][key] == summary[key]
    again, _, _ = load_policy(tmp_path / "resumed", "final", seed_index=1)
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(policy, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(again, eqx.is_array)),
    ):
        np.testing.assert_array_equal(a, b)


def test_online_through_the_simulator_fits_nothing_and_learns_by_the_analytic_gradient(tmp_path):
    out = tmp_path / "sim"
    result = run(
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        8,
        "--model",
        "simulator",
        "--env-steps",
        256,
        "--warmup-steps",
        32,
        "--lr",
        1e-2,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    config = algorithms.OnlineConfig(env_steps=256, warmup_steps=32)
    _, policy = config.update_steps(horizon=8)
    assert records[-1]["train/model_updates"] == [0]
    assert records[-1]["train/policy_updates"] == [config.policy_updates * len(policy)]
    returns = [r["eval/eval_return"][0] for r in records]
    assert returns[-1] > returns[0] + 0.5  # the initial policy's return improves
    assert not (out / "model").exists()  # nothing was fitted, so no model directory


def test_online_bad_input(tmp_path):
    result = run(
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--model",
        "awm-lstm",
        "--policy-every",
        5,
        "--out",
        tmp_path / "a",
    )
    assert result.exit_code == 2 and "multiple of --model-every" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def test_the_papers_schedule_is_accepted_and_rounded_to_whole_evaluation_periods():
    config = algorithms.OnlineConfig()  # 5000 env steps, evaluation every 32
    config.check()
    assert config.steps_run == 5024


def test_options_of_the_other_mode_are_refused_not_ignored(tmp_path):
    result = run(
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--env-steps",
        64,
        "--out",
        tmp_path / "a",
    )
    assert result.exit_code == 2 and "--env-steps does not apply without --online" in result.stderr
    result = run(*online_args(tmp_path / "a", "--steps", 5, "--log-every", 2))
    assert (
        result.exit_code == 2 and "--steps, --log-every do not apply with --online" in result.stderr
    )
    result = run(*online_args(tmp_path / "a", "--data", tmp_path))
    assert result.exit_code == 2 and "--data does not apply with --online" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_seed_inside_a_multi_seed_online_run_equals_that_seed_alone(tmp_path):
    common = (
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        4,
        "--model",
        "markov-mlp",
        "--env-steps",
        64,
        "--warmup-steps",
        16,
        "--eval-every",
        16,
        "--lr",
        1e-3,
    )
    assert run(*common, "--seeds", 2, "--seed", 0, "--out", tmp_path / "both").exit_code == 0
    assert run(*common, "--seeds", 1, "--seed", 1, "--out", tmp_path / "one").exit_code == 0
    both = [
        json.loads(l)["eval/eval_return"]
        for l in (tmp_path / "both" / "metrics.jsonl").read_text().splitlines()
    ]
    one = [
        json.loads(l)["eval/eval_return"]
        for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    ]
    np.testing.assert_allclose(np.asarray(both)[:, 1], np.asarray(one)[:, 0], rtol=1e-4)
    assert both[-1][0] != both[-1][1]


def test_updates_follow_the_authors_schedule_by_default():
    model, policy = algorithms.OnlineConfig().update_steps(horizon=100)
    # The authors' code: first model update at env step 1502, first policy update at 1504; over
    # our 5024 steps (5000 rounded up to whole evaluation periods of 32) that is 1762 and 221.
    assert (model[0], policy[0], len(model), len(policy)) == (1502, 1504, 1762, 221)
    eager = algorithms.OnlineConfig(updates_from="first-episode").update_steps(horizon=100)
    assert (eager[0][0], eager[1][0]) == (100, 112)


# Slow (`make test-all`): the default run counts the updates of the same schedule with several
# policy updates per round (test_several_policy_updates_per_round_are_all_made).
@pytest.mark.slow
def test_a_run_makes_exactly_the_scheduled_updates(tmp_path):
    schedule = (
        "--env-steps",
        64,
        "--warmup-steps",
        16,
        "--model-every",
        2,
        "--policy-every",
        8,
        "--eval-every",
        16,
    )
    for mode in ("warmup", "first-episode"):
        out = tmp_path / mode
        result = run(
            "optimize-policy",
            "--online",
            "--task",
            "cancer",
            "--horizon",
            4,
            "--model",
            "markov-mlp",
            *schedule,
            "--updates-from",
            mode,
            "--out",
            out,
        )
        assert result.exit_code == 0, result.stderr
        config = algorithms.OnlineConfig(64, 16, 2, 8, 16, updates_from=mode)
        model, policy = config.update_steps(horizon=4)
        for record in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()):
            assert record["train/model_updates"] == [sum(t <= record["step"] for t in model)]
            # a round the trust gate shuts makes no update
            rounds = sum(t <= record["step"] for t in policy)
            gated = record["train/gated_rounds"][0]
            assert record["train/policy_updates"] == [config.policy_updates * (rounds - gated)]
        assert (len(model), len(policy)) == ((24, 6) if mode == "warmup" else (31, 8))


def test_initialisation_compiled_once_also_composes_with_transformations():
    """``_init`` is compiled ahead of time with its own XLA options (``compiled_once``), which
    JAX allows only outside other transformations: inside them it must still trace, as a jit."""
    from awmctl import OnlineBPO, OnlineConfig, make_task, model_spec

    loop = OnlineBPO(
        make_task("cancer", 8),
        model_spec("markov-mlp"),
        "mlp",
        OnlineConfig(env_steps=64, warmup_steps=16),
    )
    first, again = loop.init([0, 1]), loop.init([0, 1])
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    shapes = jax.eval_shape(lambda: loop.init([0, 1]))
    assert [(s.shape, s.dtype) for s in jax.tree.leaves(shapes)] == [
        (x.shape, x.dtype) for x in jax.tree.leaves(first)
    ]
    traced = jax.jit(lambda seeds: loop._init(seeds))(jax.numpy.asarray([0, 1]))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(traced), strict=True):
        np.testing.assert_allclose(
            a, b, rtol=1e-6, atol=1e-7
        )  # an optimised build: the last bit may differ


def test_presets_fill_what_the_user_did_not_give():
    from awmctl.algorithms import BPOConfig, presets

    converged, paper = presets.ONLINE["converged"], presets.ONLINE["paper"]
    assert (paper["policy_lr"], paper["policy_updates"]) == (1e-4, 1)  # the paper's budget
    assert algorithms.OnlineConfig() == algorithms.OnlineConfig.preset("converged")
    assert algorithms.OnlineConfig.preset("paper", policy_lr=None).policy_lr == 1e-4
    assert algorithms.OnlineConfig.preset("paper", policy_lr=3e-3).policy_lr == 3e-3
    assert (
        algorithms.OnlineConfig.preset("converged", policy_updates=2).policy_lr
        == converged["policy_lr"]
    )
    assert (BPOConfig.preset("paper").lr, BPOConfig.preset("paper").steps) == (1e-4, 1000)
    assert BPOConfig() == BPOConfig.preset("converged")


def test_the_preset_is_recorded_and_options_override_it(tmp_path):
    tiny = (
        "--task",
        "cancer",
        "--horizon",
        4,
        "--model",
        "markov-mlp",
        "--env-steps",
        64,
        "--warmup-steps",
        16,
        "--eval-every",
        16,
    )
    result = run(
        "optimize-policy",
        "--online",
        *tiny,
        "--preset",
        "paper",
        "--lr",
        3e-3,
        "--out",
        tmp_path / "a",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "a" / "meta.json").read_text())["config"]
    assert (
        config["preset"],
        config["online"]["policy_lr"],
        config["online"]["policy_updates"],
    ) == ("paper", 3e-3, 1)
    summary = json.loads(result.stdout)
    assert (summary["preset"], summary["lr"], summary["policy_updates"]) == ("paper", 3e-3, 1)
    assert summary["trust_restore"] is False and "restores" not in summary
    # an option the preset leaves off, given: recorded, and its count reported
    given = run(
        "optimize-policy", "--online", *tiny, "--trust-restore", "--out", tmp_path / "r", "--json"
    )
    assert given.exit_code == 0, given.stderr
    config = json.loads((tmp_path / "r" / "meta.json").read_text())["config"]
    summary = json.loads(given.stdout)
    assert config["online"]["trust_restore"] is True and summary["trust_restore"] is True
    assert summary["restores"] >= 0 and summary["preset"] == "converged"
    bad = run("optimize-policy", "--online", *tiny, "--preset", "fast", "--out", tmp_path / "bad")
    assert (
        bad.exit_code == 2
        and "unknown preset 'fast'" in bad.stderr
        and not (tmp_path / "bad").exists()
    )
    sac = run(
        "optimize-policy",
        "--agent",
        "sac",
        "--task",
        "cancer",
        "--horizon",
        4,
        "--preset",
        "paper",
        "--out",
        tmp_path / "sac",
    )
    assert sac.exit_code == 2 and "--preset does not apply to --agent sac" in sac.stderr


def test_several_policy_updates_per_round_are_all_made(tmp_path):
    """--policy-updates K: K updates at every scheduled policy round, nothing else changes."""
    schedule = (
        "--env-steps",
        64,
        "--warmup-steps",
        16,
        "--model-every",
        2,
        "--policy-every",
        8,
        "--eval-every",
        16,
    )
    out = tmp_path / "k3"
    result = run(
        "optimize-policy",
        "--online",
        "--task",
        "cancer",
        "--horizon",
        4,
        "--model",
        "markov-mlp",
        *schedule,
        "--policy-updates",
        3,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    model, policy = algorithms.OnlineConfig(64, 16, 2, 8, 16, policy_updates=3).update_steps(
        horizon=4
    )
    for record in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()):
        assert record["train/model_updates"] == [sum(t <= record["step"] for t in model)]
        rounds, gated = sum(t <= record["step"] for t in policy), record["train/gated_rounds"][0]
        assert record["train/policy_updates"] == [3 * (rounds - gated)]  # gated: none
