"""The model-free baselines: SAC's losses against hand-worked values, SAC learning CANCER, the
decision transformer's causal mask and return-to-go bookkeeping, CLI round trips that resume
exactly, and bad input."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import make_task
from awmctl.algorithms import SAC, OnlineDT, OnlineDTConfig, SACConfig
from awmctl.algorithms import run as run_algorithm
from awmctl.algorithms.online_dt import dt_loss, sample_windows
from awmctl.algorithms.sac import actor_loss, critic_loss, td_target
from awmctl.artifacts import load_policy
from awmctl.policies import DecisionTransformer, MLPPolicy, returns_to_go
from awmctl.policies.critic import critics
from awmctl.rollouts import EpisodeReplay, TransitionReplay
from awmctl.tasks import rollout

# ------------------------------------------------------------------------------------- SAC


def constant_critics(values, obs_size=3, action_size=1):
    """Critics whose every output is a constant (zero weights, the last bias = the value)."""
    stacked = critics(len(values), obs_size, action_size, 8, key=jax.random.key(0))
    zeroed = jax.tree_util.tree_map(
        lambda x: jnp.zeros_like(x) if eqx.is_inexact_array(x) else x, stacked
    )
    zeroed = eqx.tree_at(lambda q: q.obs_norm.std, zeroed, jnp.ones_like(stacked.obs_norm.std))
    return eqx.tree_at(
        lambda q: q.mlp.layers[-1].bias, zeroed, jnp.asarray(values, jnp.float32)[:, None]
    )


def constant_actor(mean, raw_scale, obs_size=3):
    """An actor whose pre-tanh Gaussian is N(mean, softplus(raw_scale) + 1e-3) everywhere."""
    actor = MLPPolicy(obs_size, 1, 8, "relu", key=jax.random.key(1))
    zeroed = jax.tree_util.tree_map(
        lambda x: jnp.zeros_like(x) if eqx.is_inexact_array(x) else x, actor
    )
    zeroed = eqx.tree_at(lambda p: p.obs_norm.std, zeroed, jnp.ones((obs_size,)))
    return eqx.tree_at(
        lambda p: p.mlp.layers[-1].bias, zeroed, jnp.asarray([mean, raw_scale], jnp.float32)
    )


def tiny_batch(terminals):
    n = len(terminals)
    return TransitionReplay(
        jnp.ones((n, 3)),
        jnp.full((n, 1), 0.5),
        jnp.asarray([1.0, 2.0, -1.0][:n]),
        jnp.ones((n, 3)),
        jnp.asarray(terminals, jnp.float32),
        jnp.asarray(n),
    )


def test_td_target_by_hand():
    y = td_target(
        jnp.asarray([1.0, 2.0]),
        jnp.asarray([0.0, 1.0]),
        jnp.asarray([3.0, 5.0]),
        jnp.asarray([-1.0, 0.5]),
        jnp.asarray(0.1),
        0.9,
    )
    # 1 + 0.9 (3 - 0.1 x -1) = 3.79; the terminal step gets its reward alone
    np.testing.assert_allclose(y, [3.79, 2.0], rtol=1e-6)


def test_critic_loss_by_hand():
    batch = tiny_batch([0.0, 1.0, 0.0])
    critic = constant_critics([1.0, 4.0])
    target = constant_critics([2.0])  # Q' = 2 everywhere
    actor = constant_actor(0.3, -1.0)
    # alpha = 0: y = r + 0.5 (1 - terminal) 2 = [2, 2, 0]
    loss = critic_loss(critic, batch, actor, target, jnp.asarray(0.0), 0.5, jax.random.key(0))
    expected = 0.5 * (
        np.mean(np.square(1.0 - np.array([2, 2, 0])))
        + np.mean(np.square(4.0 - np.array([2, 2, 0])))
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)

    # alpha > 0: the entropy term enters through the next action's log-density, which we work out
    # here from the same Gaussian draws
    alpha, key = 0.2, jax.random.key(3)
    eps = np.asarray([jax.random.normal(k, (1,))[0] for k in jax.random.split(key, 3)], np.float64)
    scale = math.log1p(math.exp(-1.0)) + 1e-3
    pre = 0.3 + scale * eps
    log_prob = (-0.5 * eps**2 - math.log(scale) - 0.5 * math.log(2 * math.pi)) - np.log(
        1 - np.tanh(pre) ** 2
    )
    y = np.array([1.0, 2.0, -1.0]) + 0.5 * np.array([1, 0, 1]) * (2.0 - alpha * log_prob)
    expected = 0.5 * (np.mean(np.square(1.0 - y)) + np.mean(np.square(4.0 - y)))
    loss = critic_loss(critic, batch, actor, target, jnp.asarray(alpha), 0.5, key)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_actor_loss_takes_the_smaller_critic():
    obs = jnp.ones((4, 3))
    actor = constant_actor(0.0, 0.0)
    loss, mean_log_prob = actor_loss(
        actor, constant_critics([1.0, 3.0]), obs, jnp.asarray(0.0), jax.random.key(0)
    )
    np.testing.assert_allclose(loss, -1.0, rtol=1e-6)  # alpha 0: -min_i Q_i
    loss, _ = actor_loss(
        actor, constant_critics([1.0, 3.0]), obs, jnp.asarray(0.5), jax.random.key(0)
    )
    np.testing.assert_allclose(loss, 0.5 * mean_log_prob - 1.0, rtol=1e-5)


# A statistical test of learning (slow: `make test-all`); the default run keeps SAC's losses by
# hand, its CLI round trip and its goldens.
@pytest.mark.slow
def test_sac_lifts_cancer_well_above_the_random_policy():
    task = make_task("cancer", 20)
    config = SACConfig(env_steps=2400, warmup_steps=600)
    sac = SAC(task, config)
    returns = []
    state, _ = run_algorithm(
        sac, sac.init([0]), on_chunk=lambda s, b, m: returns.append(float(m["eval/eval_return"][0]))
    )
    # the paper's normalisation on this task: random -34.1, best open-loop plan -19.6
    # (benchmarks/results/bpo_tasks.jsonl); SAC should reach most of the way within 1800 updates
    assert np.mean(returns[-3:]) > -34.1 + 0.75 * (34.1 - 19.6)
    assert (
        int(state.critic_updates[0]) == (2400 - 600) // 2
        and int(state.actor_updates[0]) == (2400 - 600) // 4
    )


# ------------------------------------------------------------------------------ Online-DT


def small_dt(horizon=12, context=5, obs_size=3, action_size=2):
    return DecisionTransformer(
        obs_size,
        action_size,
        horizon,
        context=context,
        width=16,
        layers=1,
        heads=2,
        mlp_width=16,
        key=jax.random.key(0),
    )


def test_a_later_token_never_changes_an_earlier_action():
    policy = small_dt()
    key = jax.random.split(jax.random.key(1), 3)
    rtg, obs, act = (
        jax.random.normal(key[0], (5,)),
        jax.random.normal(key[1], (5, 3)),
        jax.random.normal(key[2], (5, 2)),
    )
    obs = obs.at[:, -1].set(jnp.arange(5.0))  # the step index
    mean, _ = policy(rtg, obs, act)
    changed_action, _ = policy(rtg, obs, act.at[2].add(1.0))
    np.testing.assert_array_equal(
        mean[:3], changed_action[:3]
    )  # a_2 comes after the step-2 prediction
    assert np.abs(np.asarray(changed_action[3:] - mean[3:])).max() > 1e-4
    changed_obs, _ = policy(rtg, obs.at[2, 0].add(1.0), act)
    np.testing.assert_array_equal(mean[:2], changed_obs[:2])
    assert np.abs(np.asarray(changed_obs[2] - mean[2])).max() > 1e-4  # it reads its own observation
    changed_rtg, _ = policy(rtg.at[4].add(1.0), obs, act)
    np.testing.assert_array_equal(mean[:4], changed_rtg[:4])


def test_returns_to_go_are_hindsight_sums():
    np.testing.assert_allclose(returns_to_go(jnp.asarray([1.0, 2.0, 3.0])), [6.0, 5.0, 3.0])
    replay = EpisodeReplay.empty(4, 6, 3, 2)
    rewards = jnp.arange(24.0).reshape(4, 6)
    replay = replay._replace(
        rewards=rewards,
        observations=replay.observations.at[..., -1].set(jnp.arange(7.0)),
        count=jnp.asarray(3),
    )
    to_go, obs, _ = sample_windows(replay, jax.random.key(0), 16, 4)
    for row_to_go, row_obs in zip(np.asarray(to_go), np.asarray(obs)):
        start = int(row_obs[0, -1])
        slot = [
            s for s in range(3) if np.allclose(np.asarray(rewards[s, start:].sum()), row_to_go[0])
        ]
        assert slot, "the window's first return-to-go is its episode's remaining reward"
        np.testing.assert_allclose(
            row_to_go, np.cumsum(np.asarray(rewards[slot[0]])[::-1])[::-1][start : start + 4]
        )


def test_the_controller_conditions_on_the_target_less_the_rewards_so_far():
    task = make_task("cancer", 12)
    policy = eqx.tree_at(
        lambda p: p.target, small_dt(12, 5, task.obs_size, task.action_size), jnp.asarray(-7.0)
    )
    controller = policy.controller()
    memory, state = controller.start(), task.initial_state(jax.random.key(0))
    received = 0.0
    for k in range(12):
        memory, action = controller.act(
            memory, task.observe(state, k), jnp.asarray(k), jax.random.key(k)
        )
        np.testing.assert_allclose(memory[0].returns_to_go[k], -7.0 - received, rtol=1e-5)
        state, reward = task.step(state, action, jnp.asarray(k))
        memory = controller.record(memory, reward)
        received += float(reward)
    episode = rollout(task, controller, jax.random.key(0))  # the same episode inside lax.scan
    np.testing.assert_allclose(float(episode.rewards.sum()), received, rtol=1e-5)


@pytest.mark.slow  # 62 s: learning itself, with make test-all; its parts have unit tests above
def test_online_dt_explores_above_the_best_return_and_learns_its_data():
    task = make_task("cancer", 8)
    config = OnlineDTConfig(
        env_steps=192,
        warmup_steps=64,
        eval_every=32,
        context=4,
        width=16,
        layers=1,
        heads=2,
        mlp_width=16,
        batch=16,
    )
    dt = OnlineDT(task, config)
    nll = []
    state, _ = run_algorithm(
        dt, dt.init([0]), on_chunk=lambda s, b, m: nll.append(float(m["train/nll"][0]))
    )
    assert int(state.updates[0]) == (192 - 64) // 2
    best, worst = float(state.best_return[0]), float(state.worst_return[0])
    # within an episode: the conditioning return-to-go plus what the episode got so far is the
    # exploration target, set above the best return seen when the episode began
    target = float(state.to_go[0] + state.episode_return[0])
    assert (
        target >= best - 1e-5
        and math.isclose(target, best + config.explore_margin * (best - worst), rel_tol=1e-4)
        or int(state.k[0]) == 0
    )
    assert nll[-1] < nll[2]  # the likelihood of the replayed actions rises
    windows = sample_windows(
        state.replay._replace(**{k: v[0] for k, v in state.replay._asdict().items()}),
        jax.random.key(0),
        8,
        4,
    )
    loss, (n, entropy) = dt_loss(
        dt.policy(jax.tree_util.tree_map(lambda x: x[0], state.policy)),
        windows,
        jnp.asarray(0.1),
        jax.random.key(1),
    )
    np.testing.assert_allclose(loss, n - 0.1 * entropy, rtol=1e-6)


# ---------------------------------------------------------------------------------- the CLI


def agent_args(agent, out, *extra):
    return (
        "optimize-policy",
        "--agent",
        agent,
        "--task",
        "cancer",
        "--horizon",
        8,
        "--env-steps",
        96,
        "--warmup-steps",
        32,
        "--seeds",
        2,
        "--out",
        out,
        *extra,
    )


# Online-DT's round trip is the slowest test of the suite (136 s on 2 cores): it runs with `make
# test-all`; SAC's keeps the agents' shared CLI, resume and collect path in the default run.
@pytest.mark.parametrize(
    "agent, cls, extra",
    [
        ("sac", SAC, ("--batch-size", 16)),
        pytest.param("online-dt", OnlineDT, ("--context", 4), marks=pytest.mark.slow),
    ],
)
def test_agents_run_from_the_cli_resume_exactly_and_collect_runs_their_policy(
    tmp_path, interrupt_after, agent, cls, extra
):
    whole = run(*agent_args(agent, tmp_path / "whole", "--json", *extra))
    assert whole.exit_code == 0, whole.stderr
    summary = json.loads(whole.stdout)
    assert (
        summary["agent"] == agent
        and summary["seeds"] == 2
        and np.isfinite(summary["final_return_mean"])
    )
    records = [
        json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [32, 64, 96] and len(
        records[-1]["eval/eval_return"]
    ) == 2
    assert (tmp_path / "whole" / "learning_curve.png").exists()
    meta = json.loads((tmp_path / "whole" / "meta.json").read_text())
    assert meta["agent"] == agent and meta[agent]["warmup_steps"] == 32

    undo = interrupt_after(cls, "run_chunk", 1)
    assert run(*agent_args(agent, tmp_path / "resumed", *extra)).exit_code == 130
    undo()
    resumed = run(*agent_args(agent, tmp_path / "resumed", *extra))
    assert resumed.exit_code == 0, resumed.stderr
    assert "Resuming from env step 32" in resumed.stderr
    for which in ("final", "best"):
        a, _, _ = load_policy(tmp_path / "whole", which, seed_index=1)
        b, _, _ = load_policy(tmp_path / "resumed", which, seed_index=1)
        for x, y in zip(
            jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)),
            jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array)),
        ):
            np.testing.assert_array_equal(x, y)

    # collect runs the saved policy (a decision transformer with its context and target)
    # deterministically: its return is the best evaluation the run recorded for that seed
    data = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        8,
        "--policy",
        tmp_path / "whole",
        "--episodes",
        2,
        "--out",
        tmp_path / "data",
        "--json",
    )
    assert data.exit_code == 0, data.stderr
    best_seed0 = max(r["eval/eval_return"][0] for r in records)
    assert math.isclose(json.loads(data.stdout)["mean_return"], best_seed0, rel_tol=1e-4)


def test_agent_bad_input(tmp_path):
    cases = [
        (("--agent", "ppo"), "unknown agent 'ppo'"),
        (("--agent", "sac", "--model", "awm-transformer"), "--model does not apply to --agent sac"),
        (("--agent", "sac", "--policy-every", 8), "--policy-every does not apply to --agent sac"),
        (
            ("--agent", "online-dt", "--variant", "standard"),
            "--variant does not apply to --agent online-dt",
        ),
        (("--agent", "sac", "--context", 5), "--context does not apply to --agent sac"),
        (("--agent", "sac", "--variant", "twin"), "--variant must be authors or standard"),
        (
            ("--agent", "online-dt", "--warmup-steps", 4),
            "--warmup-steps must cover at least one episode",
        ),
    ]
    for args, message in cases:
        result = run(
            "optimize-policy", "--task", "cancer", "--horizon", 8, "--out", tmp_path / "x", *args
        )
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    assert (
        run("optimize-policy", "--agent", "sac", "--out", tmp_path / "x").exit_code == 2
    )  # no --task


def test_standard_sac_tunes_its_temperature(tmp_path):
    task = make_task("cancer", 8)
    sac = SAC(
        task, SACConfig(variant="standard", env_steps=128, warmup_steps=32, batch=16, width=16)
    )
    state, _ = run_algorithm(sac, sac.init([0, 1]))
    alpha = np.exp(np.asarray(state.log_alpha))
    assert np.all(alpha != 0.1) and np.all(np.isfinite(alpha))
    assert jax.tree_util.tree_leaves(state.critic)[0].shape[:2] == (2, 2)  # seeds x twin critics
    # the target actor is unused by the standard variant: its weights never move
    for a, b in zip(
        jax.tree_util.tree_leaves(state.target_actor.mlp),
        jax.tree_util.tree_leaves(sac.init([0, 1]).target_actor.mlp),
    ):
        np.testing.assert_array_equal(a, b)
