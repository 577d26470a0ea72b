"""Online BPO's guard against a policy exploiting its model (the trust gate): the quantities it
reads, worked out independently, and that an open gate changes nothing."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl import OnlineBPO, OnlineConfig, make_task, model_spec
from awmctl.errors import BadInputError
from awmctl.models import SimulatorModel
from awmctl.rollouts import EpisodeReplay, predicted_return
from awmctl.tasks import open_loop_return


def test_return_spread_is_the_std_of_the_stored_episodes_returns_only():
    replay = EpisodeReplay.empty(capacity=5, horizon=3, obs_size=2, action_size=1)
    rewards = np.arange(15, dtype=np.float32).reshape(5, 3) ** 1.5
    for n in (2, 3, 4):  # slot n is the episode in progress, slots beyond it are empty
        stored = replay._replace(rewards=jnp.asarray(rewards), count=jnp.asarray(n, jnp.int32))
        np.testing.assert_allclose(stored.return_spread(), rewards[:n].sum(-1).std(), rtol=1e-6)
        assert int(stored.latest()) == n - 1


def test_the_simulators_predicted_return_of_recorded_actions_is_their_real_return():
    task = make_task("cancer", 8)
    actions = jax.random.uniform(jax.random.key(3), (8, task.action_size))
    obs0 = task.observe(task.initial_state(jax.random.key(0)), 0)
    np.testing.assert_allclose(
        predicted_return(SimulatorModel(task), task, obs0, actions),
        open_loop_return(task, actions),
        rtol=1e-6,
    )


def online_loop(trust_gate: float) -> OnlineBPO:
    return OnlineBPO(
        make_task("cancer", 4),
        model_spec("markov-mlp"),
        "mlp",
        OnlineConfig(
            env_steps=64, warmup_steps=16, policy_every=8, eval_every=16, trust_gate=trust_gate
        ),
    )


def run_online(loop: OnlineBPO, optimism: float = 0.0):
    state, records = loop.init([0]), []
    # the model's running optimism set at the start, so far out that its decay never crosses the
    # gate: always trusted (negative) or never (positive)
    state = state._replace(optimism=jnp.full_like(state.optimism, optimism))
    for _ in range(4):
        state, record = loop.run_chunk(state)
        records.append(record)
    return state, records


def test_an_open_gate_changes_nothing_and_a_shut_one_stops_the_policy():
    off, off_records = run_online(online_loop(0.0))
    gate = online_loop(0.5)
    open_, open_records = run_online(gate, optimism=-1e12)
    shut, shut_records = run_online(gate, optimism=1e12)
    assert "train/gated_rounds" not in off_records[-1]
    assert open_records[-1]["train/gated_rounds"].tolist() == [0]
    # the same updates; the gate's branch changes how XLA fuses the program, so the last bit may
    # differ
    for a, b in zip(jax.tree.leaves(off.policy), jax.tree.leaves(open_.policy), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    gated = int(shut_records[-1]["train/gated_rounds"][0])
    rounds = int(off_records[-1]["train/policy_updates"][0]) // 4
    # every round gated: no update, the policy stays as it was initialised
    assert rounds > 0 and gated == rounds
    assert int(shut_records[-1]["train/policy_updates"][0]) == 0
    first = jax.tree.map(lambda x: x[0], gate.init([0]).policy)  # seed 0's initial policy
    # ... with its input statistics set from the first episode, as the loop does
    expected = gate.policy(first).with_normalizer(shut.replay.observations[0, 0])
    got = gate.policy(jax.tree.map(lambda x: x[0], shut.policy))
    for a, b in zip(
        jax.tree.leaves(eqx.filter(got, eqx.is_array)),
        jax.tree.leaves(eqx.filter(expected, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_the_in_progress_check_reads_only_the_steps_taken_so_far():
    # an untrained Markov model: its predictions are wrong, so the error is not zero
    loop = OnlineBPO(
        make_task("cancer", 6),
        model_spec("markov-mlp"),
        "mlp",
        OnlineConfig(env_steps=64, warmup_steps=16, trust_check="in-progress"),
    )
    state = jax.tree.map(lambda x: x[0], loop.init([0]))
    task, slot, k = loop.task, 1, 4
    replay = EpisodeReplay.empty(loop.capacity, 6, task.obs_size, task.action_size)
    obs = jax.random.uniform(jax.random.key(1), (7, task.obs_size))
    actions = jax.random.uniform(jax.random.key(2), (6, task.action_size), minval=-1)
    rewards = jax.random.normal(jax.random.key(3), (6,))
    replay = replay._replace(
        observations=replay.observations.at[slot].set(obs),
        actions=replay.actions.at[slot].set(actions),
        rewards=replay.rewards.at[slot].set(rewards),
        count=jnp.asarray(slot, jnp.int32),  # slot 1 is the episode in progress
    )
    state = state._replace(replay=replay, k=jnp.asarray(k, jnp.int32))
    got = loop.in_progress_optimism(state)
    # worked out step by step: the Markov model from each predicted observation, the true reward
    model, o, expected = loop.model(state.model), obs[0], 0.0
    carry = model.start(o)
    for t in range(k):
        carry, nxt = model.step(carry, actions[t])
        expected += float(task.reward(o[:-1], actions[t], jnp.asarray(t), nxt[:-1]) - rewards[t])
        o = nxt
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert abs(expected) > 1e-3
    # the steps not yet taken (still zeros while the episode runs) do not count
    later = replay._replace(
        actions=replay.actions.at[slot, k:].set(0.7), rewards=replay.rewards.at[slot, k:].set(9.0)
    )
    np.testing.assert_allclose(loop.in_progress_optimism(state._replace(replay=later)), got)
    assert float(loop.in_progress_optimism(state._replace(k=jnp.asarray(0, jnp.int32)))) == 0.0


class AlwaysOverpredicting(OnlineBPO):
    """A loop whose model overpredicts every episode in progress by a return of 1e9."""

    def in_progress_optimism(self, s):
        return jnp.asarray(1e9, jnp.float32)


def test_the_in_progress_check_shuts_every_round_the_episode_in_progress_overpredicts():
    """With the completed episodes' running optimism always trusted (which alone never shuts a
    round: the test above), a model that overpredicts every episode in progress shuts every
    policy round: no update is made (episodes of 6 steps, so that a policy round, every 8 env
    steps, may fall inside one)."""
    config = OnlineConfig(
        env_steps=64, warmup_steps=16, policy_every=8, eval_every=16, trust_check="in-progress"
    )
    loop = AlwaysOverpredicting(make_task("cancer", 6), model_spec("markov-mlp"), "mlp", config)
    _, records = run_online(loop, optimism=-1e12)
    rounds = len(config.update_steps(6)[1])
    assert rounds > 0 and records[-1]["train/gated_rounds"].tolist() == [rounds]
    assert records[-1]["train/policy_updates"].tolist() == [0]


class DistrustsFromTheEighthEpisode(OnlineBPO):
    """A loop whose gate trusts the checks of episodes 1-7 and distrusts every later one."""

    def check_latest(self, s):
        s = s._replace(optimism=jnp.where(s.replay.count >= 8, 1e12, -1e12).astype(jnp.float32))
        return self.keep_or_restore(s) if self.restoring else s


def test_restore_sets_the_policy_back_to_the_one_that_began_the_last_trusted_episode():
    """Episodes of 4 steps, updates from step 17, a policy round every 8 steps. Checks at steps
    20, 24, 28 trust the model; the round after step 24 moves the policy from P0 (the initial
    one, its input statistics set) to P1; the check at 28 trusts the episode that P0 began; the
    check at 32 distrusts, so the policy goes back to P0 and stays (every later round is shut).
    Its one restore says that P1 differed from P0 there (the unit test below)."""
    config = OnlineConfig(
        env_steps=64, warmup_steps=16, policy_every=8, eval_every=16, trust_gate=0.5
    )
    make = lambda restore: DistrustsFromTheEighthEpisode(
        make_task("cancer", 4),
        model_spec("markov-mlp"),
        "mlp",
        dataclasses.replace(config, trust_restore=restore),
    )
    restoring, kept = make(True), make(False)
    restored, records = run_online(restoring)
    assert records[-1]["train/restores"].tolist() == [1]
    assert kept.init([0]).restores is None  # off: the state is a run's without it
    # one round of 4 updates, after step 24; then shut
    assert records[-1]["train/policy_updates"].tolist() == [4]
    first = jax.tree.map(lambda x: x[0], restoring.init([0]).policy)
    p0 = restoring.policy(first).with_normalizer(restored.replay.observations[0, 0])
    leaves = lambda state: jax.tree.leaves(
        eqx.filter(restoring.policy(jax.tree.map(lambda x: x[0], state.policy)), eqx.is_array)
    )
    for a, b in zip(leaves(restored), jax.tree.leaves(eqx.filter(p0, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(a, b)
    # the optimiser's state went back with the policy: Adam's step count is that of P0's (none)
    counts = [x for x in jax.tree.leaves(restored.policy_opt) if x.dtype == jnp.int32]
    assert counts and all(int(c.max()) == 0 for c in counts)


def test_restore_keeps_a_trusted_policy_and_restores_a_distrusted_one_once():
    with pytest.raises(BadInputError, match="--trust-restore acts through the trust gate"):
        OnlineConfig(trust_gate=0.0, trust_restore=True).check()
    with pytest.raises(BadInputError, match="--trust-check in-progress acts through the trust"):
        OnlineConfig(trust_gate=0.0, trust_check="in-progress").check()
    loop = OnlineBPO(
        make_task("cancer", 4),
        model_spec("markov-mlp"),
        "mlp",
        OnlineConfig(env_steps=64, warmup_steps=16, trust_gate=0.5, trust_restore=True),
    )
    s = jax.tree.map(lambda x: x[0], loop.init([0]))
    shift = lambda tree, by: jax.tree.map(  # the float arrays: Adam's step count stays
        lambda x: x + by if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )
    now, start, trusted = (shift((s.policy, s.policy_opt), d) for d in (1.0, 2.0, 3.0))
    s = s._replace(policy=now[0], policy_opt=now[1], episode_start=start, trusted=trusted)
    same = lambda a, b: all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    kept = loop.keep_or_restore(s._replace(optimism=jnp.asarray(-1.0)))
    assert same((kept.policy, kept.policy_opt), now) and same(kept.episode_start, now)
    assert same(kept.trusted, start) and int(kept.restores) == 0
    back = loop.keep_or_restore(s._replace(optimism=jnp.asarray(1e12)))
    assert same((back.policy, back.policy_opt), trusted) and same(back.trusted, trusted)
    assert same(back.episode_start, trusted) and int(back.restores) == 1
    assert int(loop.keep_or_restore(back).restores) == 1  # already there: not counted again


def test_keep_best_keeps_the_best_real_episodes_policy_and_goes_back_to_it():
    """Episodes of 4 steps; the replay holds two stored episodes, the latest just completed. An
    episode the policy ran that beats the kept one makes the policy that began it the kept one; an
    episode more than --keep-best spreads (of the stored returns) below the kept one sets the
    policy back to it."""
    with pytest.raises(BadInputError, match="give one of them"):
        OnlineConfig(keep_best=1.0, trust_restore=True).check()
    with pytest.raises(BadInputError, match="--keep-best must be 0"):
        OnlineConfig(keep_best=-1.0).check()
    loop = OnlineBPO(
        make_task("cancer", 4),
        model_spec("markov-mlp"),
        "mlp",
        OnlineConfig(env_steps=64, warmup_steps=16, keep_best=1.0),
    )
    assert (
        OnlineBPO(
            make_task("cancer", 4), model_spec("markov-mlp"), "mlp", OnlineConfig(env_steps=64)
        )
        .init([0])
        .kept
        is None
    )  # off: the state is a run's without it
    s = jax.tree.map(lambda x: x[0], loop.init([0]))
    shift = lambda tree, by: jax.tree.map(
        lambda x: x + by if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )
    now, start = (shift((s.policy, s.policy_opt), d) for d in (1.0, 2.0))
    # two stored episodes with returns -1 and +1 (spread 1), the second the latest
    rewards = s.replay.rewards.at[0, 0].set(-1.0).at[1, 0].set(1.0)
    replay = s.replay._replace(rewards=rewards, count=jnp.asarray(2, jnp.int32))
    s = s._replace(policy=now[0], policy_opt=now[1], started=start, replay=replay)
    same = lambda a, b: all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    during_warmup = loop.keep_or_fall_back(s._replace(t=jnp.asarray(8, jnp.int32)))
    assert float(during_warmup.kept_return) == -np.inf  # random actions: not the policy's
    after = s._replace(t=jnp.asarray(24, jnp.int32))
    kept = loop.keep_or_fall_back(after)  # return 1 > -inf: the policy that began it is kept
    assert float(kept.kept_return) == 1.0 and same(kept.kept, start)
    assert same((kept.policy, kept.policy_opt), now) and same(kept.started, now)
    # the latest returns 0.5: 0.5 below the kept one, within the spread (of -1 and 0.5: 0.75)
    near = kept._replace(replay=replay._replace(rewards=rewards.at[1, 0].set(0.5)))
    assert same(loop.keep_or_fall_back(near).policy, now[0])
    # -0.5: 1.5 below the kept one, more than a spread (of -1 and -0.5: 0.25)
    worse = kept._replace(replay=replay._replace(rewards=rewards.at[1, 0].set(-0.5)))
    back = loop.keep_or_fall_back(worse)
    assert same((back.policy, back.policy_opt), start) and same(back.started, start)
    assert int(back.fallbacks) == 1 and float(back.kept_return) == 1.0
