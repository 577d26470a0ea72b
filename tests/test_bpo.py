"""BPO: it improves the return, the gradient paths it claims, seeds, CLI round trip, bad input."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import algorithms, analysis
from awmctl.algorithms.references import ReferenceSettings
from awmctl.artifacts import load_model, load_policy
from awmctl.artifacts.references import load_or_compute
from awmctl.cli.common import references_cache
from awmctl.models import SimulatorModel
from awmctl.policies import build_policy
from awmctl.rollouts import (
    collect,
    direct_path_return,
    imagined_return,
    random_controller,
    stepwise_return,
    true_return,
)
from awmctl.tasks import make_task, open_loop_return


def random_mean_return(task, n=64):
    batch = collect(task, random_controller(task), n, jax.random.key(0))
    return float(batch.rewards.sum(-1).mean())


def test_bpo_through_the_simulator_beats_the_random_policy_and_round_trips(tmp_path):
    task = make_task("cancer", 20)
    random_return = random_mean_return(task)
    out = tmp_path / "policy"
    result = run(
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--horizon",
        20,
        "--steps",
        150,
        "--lr",
        1e-3,
        "--log-every",
        50,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # Random policy ~ -34 at H=20; BPO reaches about -20 (best open-loop plan is near -19.7).
    assert summary["final_return_mean"] > random_return + 10
    assert summary["final_grad_cosine_mean"] == pytest.approx(1.0, abs=1e-5)  # model == simulator
    policy, policy_task, meta = load_policy(out, which="final")
    assert meta["kind"] == "policy" and policy_task == task
    assert float(true_return(policy, task)) == pytest.approx(summary["final_return_mean"], rel=1e-5)
    # collect --policy DIR runs the stored (best) policy deterministically.
    result = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        20,
        "-n",
        2,
        "--policy",
        out,
        "--out",
        tmp_path / "d",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["mean_return"] >= summary["final_return_mean"] - 1e-4
    assert (out / "learning_curve.png").stat().st_size > 1000


def test_stop_gradient_leaves_only_the_direct_path():
    task = make_task("cancer", 6)
    sim = SimulatorModel(task)
    policy = build_policy("mlp", task.obs_size, 1, 6, key=jax.random.key(1))
    obs0 = task.observe(task.initial_state(jax.random.key(0)), 0)
    params, static = eqx.partition(policy, eqx.is_inexact_array)

    def ret(p, o0, stop):
        return imagined_return(
            eqx.combine(p, static), sim, task, o0, jax.random.key(0), stop, deterministic=True
        )[0]

    g_stop = jax.grad(ret)(params, obs0, True)
    g_full = jax.grad(ret)(params, obs0, False)
    diff = jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda a, b: jnp.max(jnp.abs(a - b)), g_stop, g_full)
    )
    assert max(float(d) for d in diff) > 1e-6  # the state path carries gradient under "full"

    # Under "stop", obs0 reaches the return only through the dynamics: the gradient equals
    # that of replaying the same actions open loop from obs0.
    actions = []
    carry, obs = sim.start(obs0), obs0
    for _ in range(6):
        a = eqx.combine(params, static).deterministic(obs)
        actions.append(a)
        carry, obs = sim.step(carry, a)
    actions = jnp.stack(actions)

    def replay(o0):
        def body(c, inp):
            state, k = c
            a = inp
            nxt = task.transition(state, a, k)
            return (nxt, k + 1), task.reward(state, a, k, nxt)

        _, rewards = jax.lax.scan(body, (o0[:-1], jnp.zeros((), jnp.int32)), actions)
        return jnp.sum(rewards)

    np.testing.assert_allclose(
        jax.grad(lambda o: ret(params, o, True))(obs0)[:-1], jax.grad(replay)(obs0)[:-1], rtol=1e-5
    )
    assert float(replay(obs0)) == pytest.approx(float(open_loop_return(task, actions)), rel=1e-6)


# Slow (`make test-all`): the default run checks the same seed mapping (algorithms.base) online.
@pytest.mark.slow
def test_a_seed_inside_a_multi_seed_run_equals_that_seed_alone(tmp_path):
    common = (
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--horizon",
        8,
        "--steps",
        20,
        "--log-every",
        10,
        "--lr",
        1e-3,
    )
    assert run(*common, "--seeds", 2, "--seed", 0, "--out", tmp_path / "both").exit_code == 0
    assert run(*common, "--seeds", 1, "--seed", 1, "--out", tmp_path / "one").exit_code == 0
    both = [json.loads(l) for l in (tmp_path / "both" / "metrics.jsonl").read_text().splitlines()]
    one = [json.loads(l) for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for b, o in zip(both, one):
        np.testing.assert_allclose(b["eval/eval_return"][1], o["eval/eval_return"][0], rtol=1e-5)
    assert both[-1]["eval/eval_return"][0] != both[-1]["eval/eval_return"][1]  # seeds differ
    p1, _, _ = load_policy(tmp_path / "both", "final", seed_index=1)
    q, _, _ = load_policy(tmp_path / "one", "final")
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(p1, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(q, eqx.is_array)),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bad_input(tmp_path):
    assert (
        run(
            "collect", "--task", "cancer", "--horizon", 4, "-n", 2, "--out", tmp_path / "d"
        ).exit_code
        == 0
    )
    result = run("optimize-policy", "--model", tmp_path / "d", "--out", tmp_path / "p")
    assert result.exit_code == 2 and "holds a dataset, but a model is expected" in result.stderr
    result = run("optimize-policy", "--model", "simulator", "--out", tmp_path / "p")
    assert result.exit_code == 2 and "needs --task" in result.stderr
    result = run(
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "bacteria",
        "--horizon",
        4,
        "--data",
        tmp_path / "d",
        "--out",
        tmp_path / "p",
    )
    assert result.exit_code == 2 and "holds cancer data, not bacteria" in result.stderr
    result = run(
        "optimize-policy",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--policy",
        "gpt",
        "--out",
        tmp_path / "p",
    )
    assert result.exit_code == 2 and "unknown policy 'gpt'" in result.stderr
    assert not (tmp_path / "p").exists()


# Slow (`make test-all`): the default run checks each spec's default gradient path
# (test_models.py) and runs BPO through a fitted AWM at it (the goldens).
@pytest.mark.slow
def test_bpo_through_a_fitted_model_uses_the_direct_path_by_default(tmp_path):
    assert (
        run(
            "collect", "--task", "cancer", "--horizon", 8, "-n", 16, "--out", tmp_path / "d"
        ).exit_code
        == 0
    )
    fitted = run(
        "fit-model",
        "--data",
        tmp_path / "d",
        "--model",
        "awm-lstm",
        "--width",
        12,
        "--steps",
        20,
        "--log-every",
        10,
        "--out",
        tmp_path / "m",
    )
    assert fitted.exit_code == 0, fitted.stderr
    # references that keep their best plan: the summary says how the model scores it
    refs = load_or_compute(
        make_task("cancer", 8),
        references_cache(),
        ReferenceSettings(random_episodes=64, shooting_starts=2, shooting_steps=100),
    )
    result = run(
        "optimize-policy",
        "--model",
        tmp_path / "m",
        "--data",
        tmp_path / "d",
        "--steps",
        10,
        "--log-every",
        5,
        "--out",
        tmp_path / "p",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["policy_input_grad"] == "stop" and summary["model"] == "awm-lstm"
    assert (
        np.isfinite(summary["final_return_mean"])
        and -1.0 <= summary["final_grad_cosine_mean"] <= 1.0
    )
    # the model's view, recomputed from what the run and the fit left on disk
    model, task, _ = load_model(tmp_path / "m")
    policy, _, _ = load_policy(tmp_path / "p", "final")
    view = analysis.model_view(model, task, policy, jnp.asarray(refs.plan, jnp.float32))
    assert summary["model_plan_return"] == pytest.approx(float(view["plan"]), rel=1e-6)
    assert summary["model_policy_return"] == pytest.approx(float(view["policy"]), rel=1e-6)
    result = run(
        "optimize-policy", "--model", tmp_path / "m", "--task", "bacteria", "--out", tmp_path / "q"
    )
    assert result.exit_code == 2 and "was fitted on cancer, not bacteria" in result.stderr


@pytest.mark.parametrize("name", ["awm-transformer", "awm-lstm"])
def test_parallel_direct_path_equals_the_step_by_step_rollout(name):
    from awmctl.models import build_model

    task = make_task("cancer", 8)
    hyper = {"width": 12, "heads": 2, "mlp_width": 24} if "transformer" in name else {"width": 12}
    model = build_model(name, 1, 1, 8, hyper, key=jax.random.key(0))
    policy = build_policy("mlp", task.obs_size, 1, 8, key=jax.random.key(1))
    params, static = eqx.partition(policy, eqx.is_inexact_array)
    obs0 = task.observe(task.initial_state(jax.random.key(0)), 0)
    keys = jax.random.split(jax.random.key(2), 8)

    def value(p, fast):
        pol = eqx.combine(p, static)
        if fast:
            return direct_path_return(pol, model, task, obs0, keys, False)
        return stepwise_return(pol, model, task, obs0, keys, True, False)

    # Compiled, so that the runtime shape checks run once per trace rather than on every op.
    value_and_grad = eqx.filter_jit(
        lambda p, fast: jax.value_and_grad(lambda q: value(q, fast), has_aux=True)(p)
    )
    (r_fast, e_fast), g_fast = value_and_grad(params, True)
    (r_slow, e_slow), g_slow = value_and_grad(params, False)
    np.testing.assert_allclose(r_fast, r_slow, rtol=1e-5)
    np.testing.assert_allclose(e_fast, e_slow, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_slow)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# Slow (`make test-all`): the default run resumes the same driver after a kill online, in
# fit-model, and after SIGTERM and kill -9 (test_preemption.py).
@pytest.mark.slow
def test_offline_bpo_resumes_exactly_after_a_kill(tmp_path, interrupt_after):
    def args(out):
        return (
            "optimize-policy",
            "--model",
            "simulator",
            "--task",
            "cancer",
            "--horizon",
            6,
            "--steps",
            40,
            "--log-every",
            10,
            "--lr",
            1e-3,
            "--seeds",
            2,
            "--out",
            out,
        )

    assert run(*args(tmp_path / "whole")).exit_code == 0
    undo = interrupt_after(algorithms.BPO, "run_chunk", 2)
    assert run(*args(tmp_path / "resumed")).exit_code == 130
    assert not (tmp_path / "resumed").exists() and (tmp_path / "resumed.partial").exists()
    undo()
    resumed = run(*args(tmp_path / "resumed"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "Resuming from update 20" in resumed.stderr
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [10, 20, 30, 40]
    for which in ("final", "best"):
        a, _, _ = load_policy(tmp_path / "whole", which, seed_index=1)
        b, _, _ = load_policy(tmp_path / "resumed", which, seed_index=1)
        for x, y in zip(
            jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)),
            jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array)),
        ):
            np.testing.assert_array_equal(x, y)


def test_checkpoints_wait_for_their_interval_and_a_run_without_one_starts_over(
    tmp_path, interrupt_after, monkeypatch
):
    def args(out):
        return (
            "optimize-policy",
            "--model",
            "simulator",
            "--task",
            "cancer",
            "--horizon",
            6,
            "--steps",
            30,
            "--log-every",
            10,
            "--lr",
            1e-3,
            "--out",
            out,
        )

    assert run(*args(tmp_path / "whole")).exit_code == 0
    monkeypatch.setenv("AWMCTL_CHECKPOINT_SECONDS", "3600")
    undo = interrupt_after(algorithms.BPO, "run_chunk", 2)
    assert run(*args(tmp_path / "again")).exit_code == 130
    assert not any((tmp_path / "again.partial" / "checkpoints").glob("[0-9]*"))  # none was due yet
    undo()
    again = run(*args(tmp_path / "again"))
    assert again.exit_code == 0 and "Resuming" not in again.stderr
    a, _, _ = load_policy(tmp_path / "whole", "final")
    b, _, _ = load_policy(tmp_path / "again", "final")
    for x, y in zip(
        jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array)),
    ):
        np.testing.assert_array_equal(x, y)
    monkeypatch.setenv("AWMCTL_CHECKPOINT_SECONDS", "soon")
    result = run(*args(tmp_path / "bad"))
    assert result.exit_code == 2 and "AWMCTL_CHECKPOINT_SECONDS must be a number" in result.stderr
    monkeypatch.setenv("AWMCTL_SEEDS", "parallel")
    result = run(*args(tmp_path / "bad"))
    assert result.exit_code == 2 and "AWMCTL_SEEDS must be vmap or sequential" in result.stderr
    # The seed mode is part of the run's configuration: a run resumes only with the mode it
    # began with (its numbers could differ in the last bits otherwise).
    monkeypatch.setenv("AWMCTL_CHECKPOINT_SECONDS", "0")
    monkeypatch.setenv("AWMCTL_SEEDS", "sequential")
    undo = interrupt_after(algorithms.BPO, "run_chunk", 1)
    assert run(*args(tmp_path / "mode")).exit_code == 130
    undo()
    monkeypatch.setenv("AWMCTL_SEEDS", "vmap")
    result = run(*args(tmp_path / "mode"))
    assert result.exit_code == 2 and "other settings (bpo.seed_mode)" in result.stderr
    meta = json.loads((tmp_path / "mode.partial" / "meta.json").read_text())
    assert meta["config"]["bpo"]["seed_mode"] == "sequential"


def test_the_policy_table_builds_every_kind_and_names_all_when_one_is_unknown():
    from awmctl.errors import BadInputError
    from awmctl.policies import POLICIES, POLICY_SPECS, MarkovPolicy

    for name, spec in POLICY_SPECS.items():
        built = build_policy(name, 3, 2, 5, key=jax.random.key(0))
        assert type(built) is spec.cls
        # BPO trains exactly the Markov policies
        assert (name in POLICIES) == spec.bpo == isinstance(built, MarkovPolicy)
    assert set(POLICY_SPECS) == {"mlp", "open-loop", "decision-transformer"}
    with pytest.raises(BadInputError, match="choose one of: mlp, open-loop, decision-transformer"):
        build_policy("ppo", 3, 2, 5, key=jax.random.key(0))
