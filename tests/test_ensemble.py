"""Ensembles of world models: one member is its model bit for bit; members differ and disagree
away from the data; pessimism is the members' lower confidence bound; an ensemble fitted, saved,
resumed and used by every command."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run
from lq_task import LinearQuadratic

from awmctl import BadInputError, ModelFit, algorithms, optim
from awmctl.algorithms import model_step, policy_gradient, policy_objective
from awmctl.artifacts import load_model
from awmctl.artifacts.models import parameter_count
from awmctl.cli.optimize_policy import fell_back
from awmctl.models import Ensemble, build_ensemble, build_model, imagine, model_spec
from awmctl.policies import build_policy
from awmctl.rollouts import collect, imagined_return, member_returns, random_controller
from awmctl.tasks import make_task

SIZES = {"markov-mlp": {"width": 16}, "awm-lstm": {"width": 12}}


def leaves(tree):
    return jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))


def assert_same(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", ["markov-mlp", "awm-lstm"])
def test_an_ensemble_of_one_is_its_model_bit_for_bit(name):
    task = make_task("cancer", 8)
    episodes = collect(task, random_controller(task), 12, jax.random.key(0))
    obs, act = jnp.asarray(episodes.observations), jnp.asarray(episodes.actions)
    build = lambda k: build_model(name, 1, 1, 8, SIZES[name], key=k).with_normalizers(obs)
    alone = build(jax.random.key(3))
    one = build_ensemble(build, 1, jax.random.key(3))
    assert one.size == 1 and one.name == name
    assert_same(alone, one.member(0))
    np.testing.assert_array_equal(
        alone.predict(obs[0, :, :-1], act[0]), one.predict(obs[0, :, :-1], act[0])
    )
    np.testing.assert_array_equal(
        imagine(alone, obs[0, 0], act[0]), imagine(one, obs[0, 0], act[0])
    )

    # one training step on the same batch: the same update and loss
    tx = optim.adam(1e-3)
    updated = []
    for model in (alone, one):
        params, static = eqx.partition(model, eqx.is_inexact_array)
        step = jax.jit(lambda p, o, static=static: model_step(p, o, static, tx, obs, act))
        new, _, loss = step(params, tx.init(params))
        updated.append((eqx.combine(new, static), loss))
    np.testing.assert_array_equal(updated[0][1], updated[1][1])
    assert_same(updated[0][0], updated[1][0].member(0))

    # the policy's imagined return and its gradient, with and without pessimism
    policy = build_policy("mlp", task.obs_size, 1, 8, key=jax.random.key(1)).with_normalizer(obs)
    p_params, p_static = eqx.partition(policy, eqx.is_inexact_array)
    key = jax.random.key(2)
    stop = name != "markov-mlp"
    r_alone, _ = imagined_return(policy, alone, task, obs[0, 0], key, stop)
    r_one, _ = imagined_return(policy, one, task, obs[0, 0], key, stop)
    np.testing.assert_array_equal(r_alone, r_one)
    g_alone, _ = policy_gradient(p_params, p_static, alone, task, obs[:4, 0], key, 0.0, stop)
    for pessimism in (0.0, 1.0):
        g_one, _ = policy_gradient(
            p_params, p_static, one, task, obs[:4, 0], key, 0.0, stop, pessimism
        )
        assert_same(g_alone, g_one)


def test_members_differ_and_disagree_away_from_the_data():
    # x' = x + 0.5 u: the data cover x in about [0.7, 1.3]; far from there no member was taught
    task = LinearQuadratic(horizon=10, x0_noise=0.1)
    episodes = collect(task, random_controller(task), 128, jax.random.key(0))
    fit = ModelFit.create(episodes, "markov-mlp", steps=400, log_every=100, ensemble=4, lr=3e-3)
    state, _ = algorithms.run(fit, fit.init([0]))
    model = fit.model(jax.tree.map(lambda x: x[0], state.params))
    assert isinstance(model, Ensemble) and model.size == 4
    first = leaves(model.members)[0]
    assert all(not np.array_equal(first[0], first[k]) for k in range(1, 4))

    def spread(x):  # members' std of the next state from x with u = 0.5, and the mean's error
        states = jnp.stack([jnp.asarray([x]), jnp.asarray([x])])
        steps = model.map(lambda m: m.predict(states, jnp.asarray([[0.5]])))[:, 0, 0]
        return float(jnp.std(steps)), float(abs(jnp.mean(steps) - (x + 0.25)))

    near, near_error = spread(1.0)
    far, _ = spread(12.0)
    assert near_error < 0.05  # the ensemble knows the dynamics where the data are
    assert far > 10 * near, (near, far)
    summary = fit.summary(jax.tree.map(lambda x: x[0], state.params))
    assert summary["ensemble"] == 4 and summary["val_disagreement"] > 0


def test_pessimism_is_the_lower_confidence_bound_of_the_members_returns():
    task = make_task("cancer", 6)
    episodes = collect(task, random_controller(task), 8, jax.random.key(0))
    obs = jnp.asarray(episodes.observations)
    ensemble = build_model("awm-lstm", 1, 1, 6, {"width": 8}, key=jax.random.key(0), ensemble=3)
    ensemble = ensemble.with_normalizers(obs)
    policy = build_policy("mlp", task.obs_size, 1, 6, key=jax.random.key(1)).with_normalizer(obs)
    starts, key = obs[:4, 0], jax.random.key(5)
    keys = jax.random.split(key, 4)
    each = jax.jit(jax.vmap(lambda o, k: member_returns(policy, ensemble, task, o, k, True)[0]))
    returns = np.asarray(each(starts, keys))  # [starts, members]
    assert returns.shape == (4, 3) and np.all(returns.std(axis=1) > 0)
    objective = eqx.filter_jit(
        lambda model, beta: policy_objective(policy, model, task, starts, key, 0.0, True, beta)
    )
    for beta in (0.0, 2.0, -1.0):
        loss, imagined = objective(ensemble, beta)
        bound = np.mean(returns.mean(axis=1) - beta * returns.std(axis=1))
        np.testing.assert_allclose(-float(loss), bound, rtol=1e-5)
        np.testing.assert_allclose(float(imagined), returns.mean(), rtol=1e-5)
    # through one model, pessimism changes nothing
    alone = ensemble.member(0)
    assert float(objective(alone, 2.0)[0]) == float(objective(alone, 0.0)[0])


def fit_args(data, out, *extra):
    return (
        "fit-model", "--data", data, "--model", "awm-lstm", "--width", 8, "--ensemble", 3,
        "--steps", 30, "--log-every", 10, "--batch-size", 8, "--out", out, *extra,
    )  # fmt: skip


def test_an_ensemble_resumes_exactly_and_every_command_takes_it(tmp_path, interrupt_after):
    data = tmp_path / "data"
    assert (
        run("collect", "--task", "cancer", "--horizon", 8, "-n", 24, "--out", data).exit_code == 0
    )
    whole = run(*fit_args(data, tmp_path / "whole", "--json"))
    assert whole.exit_code == 0, whole.stderr
    summary = json.loads(whole.stdout)
    assert summary["ensemble"] == 3 and summary["val_disagreement"] > 0

    undo = interrupt_after(algorithms.ModelFit, "run_chunk", 2)
    assert run(*fit_args(data, tmp_path / "resumed")).exit_code == 130
    undo()
    resumed = run(*fit_args(data, tmp_path / "resumed"))
    assert resumed.exit_code == 0 and "Resuming from step 20" in resumed.stderr
    model, _, meta = load_model(tmp_path / "whole")
    again, _, _ = load_model(tmp_path / "resumed")
    assert isinstance(model, Ensemble) and model.size == 3 and meta["model"]["ensemble"] == 3
    assert_same(model, again)
    one = model_spec("awm-lstm").build(1, 1, 8, {"width": 8}, key=jax.random.key(0))
    assert meta["model"]["parameters"] == 3 * parameter_count(one)

    policy = tmp_path / "policy"
    result = run(
        "optimize-policy", "--model", tmp_path / "whole", "--data", data, "--steps", 20,
        "--log-every", 10, "--pessimism", 1, "--out", policy, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    bpo = json.loads(result.stdout)
    assert bpo["ensemble"] == 3 and bpo["pessimism"] == 1.0
    records = [json.loads(l) for l in (policy / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train/imagined_disagreement"][0] > 0
    for command in (
        ("grad-norm", "--model", tmp_path / "whole", "--horizons", "2,4,8", "--samples", 4),
        ("landscape", "--model", tmp_path / "whole", "--policy", policy, "--points", 5),
    ):
        out = tmp_path / command[0]
        result = run(*command, "--out", out)
        assert result.exit_code == 0, result.stderr
    shown = run("show", tmp_path / "whole")
    assert shown.exit_code == 0 and "ensemble" in shown.stdout + shown.stderr


def online_args(out, *extra):
    return (
        "optimize-policy", "--online", "--task", "cancer", "--horizon", 8, "--model",
        "markov-mlp", "--ensemble", 2, "--pessimism", 0.5, "--env-steps", 96, "--warmup-steps",
        32, "--out", out, *extra,
    )  # fmt: skip


def test_an_online_ensemble_run_resumes_exactly(tmp_path, interrupt_after):
    whole = run(*online_args(tmp_path / "whole", "--json"))
    assert whole.exit_code == 0, whole.stderr
    summary = json.loads(whole.stdout)
    assert summary["ensemble"] == 2 and summary["pessimism"] == 0.5
    model, _, _ = load_model(tmp_path / "whole" / "model")
    assert isinstance(model, Ensemble) and model.size == 2

    undo = interrupt_after(algorithms.OnlineBPO, "run_chunk", 1)
    assert run(*online_args(tmp_path / "resumed")).exit_code == 130
    undo()
    resumed = run(*online_args(tmp_path / "resumed"))
    assert resumed.exit_code == 0 and "Resuming from env step 32" in resumed.stderr
    again, _, _ = load_model(tmp_path / "resumed" / "model")
    assert_same(model, again)


def test_exploration_is_optimism_for_its_steps_then_pessimism():
    task = make_task("cancer", 10)
    config = algorithms.OnlineConfig.preset(
        "converged", ensemble=2, pessimism=0.5, exploration=2.0, explore_steps=100
    )
    loop = algorithms.OnlineBPO(task, model_spec("markov-mlp"), "mlp", config)
    state = jax.tree.map(lambda x: x[0], loop.init([0]))
    at = lambda t: float(loop.pessimism(state._replace(t=jnp.asarray(t, jnp.int32))))
    # updates begin after the 1500 warm-up steps; the first 100 of updating are optimistic
    assert at(1501) == at(1599) == -2.0 and at(1600) == at(5000) == 0.5
    plain = algorithms.OnlineBPO(
        task, model_spec("markov-mlp"), "mlp", algorithms.OnlineConfig(ensemble=2, pessimism=0.5)
    )
    assert plain.pessimism(state) == 0.5  # no exploration: a constant, the ensemble's path only


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"pessimism": 1.0}, "--pessimism acts through the disagreement"),
        ({"ensemble": 2, "exploration": 1.0}, "give it with one of them, or neither"),
        ({"explore_steps": 10}, "give it with one of them, or neither"),
        ({"explore_offset": 3.0, "explore_steps": 10}, "--explore-offset must be in"),
        ({"ensemble": 2, "explore_steps": -1}, r"must be 0 \(off\) or positive"),
        ({"ensemble": 0}, "--ensemble must be a whole number"),
        ({"ensemble": 2, "pessimism": float("nan")}, "--pessimism must be a finite number"),
    ],
)
def test_settings_that_would_do_nothing_or_cannot_work_are_refused(given, says):
    with pytest.raises(BadInputError, match=says):
        algorithms.OnlineConfig(**given).check()


def test_the_summary_says_when_the_final_policy_ends_worse_than_the_data_showed():
    refs = {"R_random": -30.0, "R_opt": -20.0, "score": -0.2, "best_score": 0.9}
    summary = {"final_return_mean": -32.0, "best_return_mean": -21.0, **refs}
    random_line, best_line = fell_back(summary)
    assert "worse than a random one (score -0.2" in random_line
    assert "below the -21 (score 0.9) of the best policy" in best_line
    # within 5% of R_opt - R_random of the best: nothing to say
    assert fell_back({**summary, "final_return_mean": -21.4, "score": 0.86}) == []
    # without references: 5% of the best return's size
    bare = {"final_return_mean": -22.0, "best_return_mean": -20.0}
    assert len(fell_back(bare)) == 1 and fell_back({**bare, "final_return_mean": -20.5}) == []


def test_perturbed_plans_shift_whole_episodes_while_exploring_only():
    task = make_task("cancer", 4)
    base = {
        "env_steps": 48,
        "warmup_steps": 16,
        "eval_every": 16,
        "policy_every": 4,
        "model_every": 2,
    }
    runs = {}
    for offset in (0.0, 2.0):
        extra = {"explore_offset": offset, "explore_steps": 16} if offset else {}
        loop = algorithms.OnlineBPO(
            task, model_spec("markov-mlp"), "mlp", algorithms.OnlineConfig(**base, **extra)
        )
        state, _ = algorithms.run(loop, loop.init([0]))
        runs[offset] = np.asarray(state.replay.actions[0])  # [episodes, 4, 1]
    # episodes 0-3: the warm-up (uniform random actions); 4-7 began after it, within the 16
    # steps of exploration (offsets up to 2: clipped at the bounds); 8-11: the policy's own
    clipped = lambda actions: int(np.sum(np.abs(actions) == 1.0))
    assert clipped(runs[0.0]) == 0  # a tanh-Gaussian's samples never reach the bounds
    assert clipped(runs[2.0][4:8]) > 0 and clipped(runs[2.0][8:12]) == 0
    np.testing.assert_array_equal(runs[0.0][:4], runs[2.0][:4])  # the warm-up is untouched


def test_the_trust_gate_can_read_the_members_lower_bound():
    task = make_task("cancer", 4)
    config = algorithms.OnlineConfig(
        env_steps=32, warmup_steps=16, ensemble=3, pessimism=1.0, trust_bound=True
    )
    loop = algorithms.OnlineBPO(task, model_spec("markov-mlp"), "mlp", config)
    state, _ = algorithms.run(loop, loop.init([0]))
    s = jax.tree.map(lambda x: x[0], state)
    model = loop.model(s.model)
    slot = s.replay.latest()
    obs0, actions = s.replay.observations[slot, 0], s.replay.actions[slot]
    members = np.asarray(
        model.map(lambda m: algorithms.online.predicted_return(m, task, obs0, actions))
    )
    assert members.std() > 0
    real = float(jnp.sum(s.replay.rewards[slot]))
    checked = loop.check_latest(s._replace(optimism=jnp.zeros((), jnp.float32)))
    # the running mean's newest term (weight 0.2) is the lower bound's error on that episode
    expected = 0.2 * (members.mean() - members.std() - real)
    np.testing.assert_allclose(float(checked.optimism), expected, rtol=1e-4)
    with pytest.raises(BadInputError, match="--trust-bound makes the trust gate read"):
        algorithms.OnlineConfig(ensemble=3, trust_bound=True).check()
