"""grad-norm and landscape: values against hand-worked answers, the CLI's files, bad input."""

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import analysis, store
from awmctl.models import AbstractOneStepModel, SimulatorModel
from awmctl.tasks import make_task, with_horizon


class LinearModel(AbstractOneStepModel):
    """s' = lam * s + b * a: its first-action Jacobian after H steps is lam^(H-1) * b."""

    lam: float = eqx.field(static=True)
    b: jax.Array
    name: str = eqx.field(static=True)
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    max_horizon: None = eqx.field(static=True)
    trainable: ClassVar[bool] = False
    direct_path: ClassVar[bool] = False

    def __init__(self, lam, b):
        self.lam, self.b = lam, b
        self.name, self.state_size, self.action_size, self.max_horizon = "linear", 1, 1, None

    def next_state(self, state, action, k):
        return self.lam * state + self.b * action

    def with_normalizers(self, observations):
        return self

    def state_scale(self):
        return jnp.ones((1,))

    def hyperparameters(self):
        return {}


@pytest.mark.parametrize("lam", [0.8, 1.25])
def test_linear_model_jacobian_norm_is_lambda_to_the_h_minus_1(lam):
    task = make_task("cancer", 30)
    model = LinearModel(lam, jnp.asarray([0.5]))
    hs = np.asarray([2, 5, 10, 20, 30])
    norms = []
    for h in hs:
        actions = jax.random.uniform(jax.random.key(0), (3, int(h), 1), minval=-1, maxval=1)
        state_norm, _ = analysis.first_action_gradients(
            model, with_horizon(task, int(h)), analysis.initial_observation(task), actions
        )
        np.testing.assert_allclose(np.asarray(state_norm), 0.5 * lam ** (h - 1), rtol=1e-5)
        norms.append(float(state_norm[0]))
    growth = analysis.fit_growth(hs, np.asarray(norms))
    assert growth["better"] == "exponential"
    assert growth["exponential_rate"] == pytest.approx(np.log(lam), rel=1e-4)


def test_simulator_gradients_match_finite_differences():
    with jax.enable_x64(True):
        task = make_task("hiv-treatment", 100)  # dt = 0.2: the stable regime
        task = with_horizon(task, 6)
        assert task.dt == pytest.approx(0.2)
        obs0 = analysis.initial_observation(task)
        actions = jax.random.uniform(
            jax.random.key(3), (2, 6, 1), minval=-0.9, maxval=0.9, dtype=jnp.float64
        )
        sim = SimulatorModel(task)
        state_norm, return_norm = analysis.first_action_gradients(sim, task, obs0, actions)
        eps = 1e-6
        for i in range(2):

            def final(a1, i=i):
                return analysis.imagined_final_and_return(
                    sim, task, obs0, actions[i].at[0, 0].set(a1)
                )

            (sp, rp), (sm, rm) = final(actions[i, 0, 0] + eps), final(actions[i, 0, 0] - eps)
            fd_state = np.linalg.norm((np.asarray(sp) - np.asarray(sm)) / (2 * eps))
            fd_return = abs(float(rp - rm)) / (2 * eps)
            assert fd_state > 0 and fd_return > 0
            np.testing.assert_allclose(float(state_norm[i]), fd_state, rtol=1e-5)
            np.testing.assert_allclose(float(return_norm[i]), fd_return, rtol=1e-5)


def test_with_horizon_keeps_the_step_length():
    for name, h in (("cancer", 100), ("double-pendulum", 100), ("bounce", 100)):
        task = make_task(name, h)
        short = with_horizon(task, 10)
        assert (
            short.horizon == 10 and short.dt == pytest.approx(task.dt) and short.name == task.name
        )
    assert with_horizon(make_task("cancer", 20), 10).params["T"] == pytest.approx(10.0)


def test_landscape_of_a_known_quadratic():
    # Double pendulum at L = 2: the reward is taken on the state the first action sets, against
    # the goal's own start state, so R(a) = -(angle_scale * (a - g0))^2 / 4 exactly.
    task = make_task("double-pendulum", 2, {"goal": (0.3, -0.5)})
    grid = np.linspace(-1.0, 1.0, 21)  # contains 0.3
    returns, finals = analysis.first_action_landscape(
        SimulatorModel(task),
        task,
        analysis.initial_observation(task),
        jnp.asarray(grid),
        jnp.zeros((1, 1)),
        chunk=8,
    )
    expected = -((180.0 * (grid - 0.3)) ** 2) / 4
    np.testing.assert_allclose(returns, expected, rtol=1e-5, atol=1e-2)
    # The final state is s_2: the set state after one integration interval.
    state = task.transition(
        task.transition(
            task.initial_state(jax.random.key(0)),
            jnp.asarray([grid[4]], jnp.float32),
            jnp.asarray(0),
        ),
        jnp.zeros(1),
        jnp.asarray(1),
    )
    assert finals.shape == (21, 4)
    np.testing.assert_allclose(
        finals[4], np.asarray(state), rtol=1e-4, atol=1e-5
    )  # float32 ODE under vmap
    rough = analysis.roughness(returns)
    assert rough["local_maxima"] == 1
    assert rough["total_variation"] == pytest.approx(
        2 * expected.max() - expected[0] - expected[-1], rel=1e-5
    )
    best = analysis.curve_comparison(returns, expected, grid)
    assert best["argmax"] == pytest.approx(0.3) and best["regret"] == pytest.approx(0.0, abs=1e-6)


def test_roughness_and_growth_statistics():
    x = np.linspace(0, 4 * np.pi, 400)
    assert analysis.roughness(np.sin(x))["local_maxima"] == 2
    assert analysis.roughness(np.sin(x))["total_variation"] == pytest.approx(8.0, rel=1e-3)
    bowl = -np.add.outer(np.linspace(-1, 1, 11) ** 2, np.linspace(-1, 1, 11) ** 2)
    assert analysis.roughness(bowl)["local_maxima"] == 1
    hs = np.asarray([5, 10, 20, 50, 100])
    poly = analysis.fit_growth(hs, 3.0 * hs**2.5)
    assert poly["better"] == "polynomial" and poly["polynomial_degree"] == pytest.approx(2.5)
    expo = analysis.fit_growth(hs, 2.0 * np.exp(0.07 * hs))
    assert expo["better"] == "exponential" and expo["exponential_rate"] == pytest.approx(0.07)
    assert analysis.fit_growth(hs[:2], hs[:2] * 1.0)["better"] is None  # two points decide nothing


def test_the_bound_forms_recover_the_form_that_made_the_norms():
    hs = np.asarray([2, 5, 10, 20, 50, 100, 150, 200], np.float64)
    noise = np.exp(np.random.default_rng(0).normal(0.0, 0.05, hs.size))  # 5% multiplicative
    expo = analysis.fit_bound_forms(hs, 3.0 * 1.05**hs * noise)
    assert expo["better"] == "exponential" and expo["eta"] == pytest.approx(1.05, abs=1e-3)
    assert expo["exponential_heldout"] < 0.05 < expo["cubic_heldout"]
    cubic = analysis.fit_bound_forms(hs, (1.0 + 0.5 * hs**3) * noise)
    assert cubic["better"] == "cubic" and cubic["cubic"][0] == pytest.approx(0.5, rel=0.1)
    assert cubic["cubic_aic"] < cubic["exponential_aic"]
    # a decaying norm (a stable system's Jacobian) is exponential with eta below 1
    decay = analysis.fit_bound_forms(hs, 0.08 * 0.93**hs)
    assert decay["better"] == "exponential" and decay["eta"] == pytest.approx(0.93)
    assert analysis.fit_bound_forms(hs[:5], hs[:5])["better"] is None  # too few to hold one out


def test_filter_normalised_directions_match_each_filters_norm():
    w = jnp.asarray([[3.0, 4.0], [0.0, 1.0], [1.0, 1.0]])
    d = analysis.filter_normalized_direction({"w": w, "b": jnp.ones(3)}, jax.random.key(0))
    np.testing.assert_allclose(np.linalg.norm(d["w"], axis=1), [5.0, 1.0, np.sqrt(2.0)], rtol=1e-5)
    assert not np.any(np.asarray(d["b"]))


def test_grad_norm_cli_writes_consistent_outputs(tmp_path):
    out = tmp_path / "gn"
    result = run(
        "grad-norm",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--base-horizon",
        20,
        "--horizons",
        "3,6,12",
        "--samples",
        4,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    meta = store.read_meta(out, "grad-norm")
    arrays = store.restore_arrays(
        out, {"norms": np.zeros((1, 3, 2, 4)), "horizons": np.zeros(3, np.int64)}, meta
    )
    norms = np.asarray(arrays["norms"])
    for j, h in enumerate([3, 6, 12]):
        stats = summary["models"]["simulator"]["state"][str(h)]
        assert stats["median"] == pytest.approx(float(np.median(norms[0, j, 0])), rel=1e-6)
        assert summary["models"]["simulator"]["return"][str(h)]["mean"] == pytest.approx(
            float(norms[0, j, 1].mean()), rel=1e-6
        )
    # The same inputs through the library give the same numbers.
    task = with_horizon(make_task("cancer", 20), 6)
    actions = jax.random.uniform(jax.random.key(0), (4, 12, 1), minval=-1.0, maxval=1.0)[:, :6]
    state_norm, _ = analysis.first_action_gradients(
        SimulatorModel(task), task, analysis.initial_observation(task), actions
    )
    np.testing.assert_allclose(norms[0, 1, 0], np.asarray(state_norm), rtol=1e-5)
    assert (out / "grad_norm.png").stat().st_size > 1000
    assert (out / "grad_norm.csv").read_text().count("\n") == 1 + 2 * 3


def test_landscape_cli_1d_and_2d(tmp_path):
    result = run(
        "landscape",
        "--model",
        "simulator",
        "--task",
        "double-pendulum",
        "--horizon",
        2,
        "--points",
        21,
        "--out",
        tmp_path / "l1",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["kind"] == "1d" and summary["models"]["simulator"]["argmax"] == pytest.approx(
        0.3
    )
    meta = store.read_meta(tmp_path / "l1", "landscape")
    arrays = store.restore_arrays(
        tmp_path / "l1",
        {"grid": np.zeros(21), "returns": np.zeros((1, 21)), "final_states": np.zeros((1, 21, 4))},
        meta,
    )
    assert summary["models"]["simulator"]["roughness"] == analysis.roughness(
        np.asarray(arrays["returns"][0])
    )

    policy = tmp_path / "policy"
    assert (
        run(
            "optimize-policy",
            "--model",
            "simulator",
            "--task",
            "cancer",
            "--horizon",
            5,
            "--steps",
            2,
            "--log-every",
            1,
            "--out",
            policy,
        ).exit_code
        == 0
    )
    result = run(
        "landscape",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--horizon",
        5,
        "--policy",
        policy,
        "--points",
        5,
        "--chunk",
        7,
        "--out",
        tmp_path / "l2",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    meta = store.read_meta(tmp_path / "l2", "landscape")
    arrays = store.restore_arrays(
        tmp_path / "l2", {"alphas": np.zeros(5), "returns": np.zeros((1, 5, 5))}, meta
    )
    surface = np.asarray(arrays["returns"][0])
    from awmctl.artifacts import load_policy
    from awmctl.rollouts import true_return

    trained, task, _ = load_policy(policy)
    # The centre of the plane is the policy itself: its true return.
    assert surface[2, 2] == pytest.approx(float(true_return(trained, task)), rel=1e-5)
    assert summary["models"]["simulator"]["centre_return"] == pytest.approx(float(surface[2, 2]))
    assert len(np.unique(surface.round(6))) > 1
    assert (tmp_path / "l2" / "landscape.png").stat().st_size > 1000

    # A policy of another task is refused in one line.
    result = run(
        "landscape",
        "--model",
        "simulator",
        "--task",
        "bacteria",
        "--policy",
        policy,
        "--out",
        tmp_path / "l3",
    )
    assert result.exit_code == 2 and "policy for cancer, not bacteria" in result.stderr


def test_bad_input(tmp_path):
    assert (
        run(
            "collect", "--task", "cancer", "--horizon", 6, "-n", 8, "--out", tmp_path / "d"
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
        8,
        "--steps",
        2,
        "--log-every",
        1,
        "--out",
        tmp_path / "m",
    )
    assert fitted.exit_code == 0, fitted.stderr
    result = run(
        "grad-norm", "--model", tmp_path / "m", "--horizons", "3,10", "--out", tmp_path / "g"
    )
    assert result.exit_code == 2 and "context of 6 steps, shorter than H=10" in result.stderr
    result = run("landscape", "--model", tmp_path / "m", "--horizon", 8, "--out", tmp_path / "g")
    assert result.exit_code == 2 and "context of 6 steps" in result.stderr
    result = run("grad-norm", "--model", tmp_path / "d", "--out", tmp_path / "g")
    assert result.exit_code == 2 and "a model is expected" in result.stderr
    result = run("grad-norm", "--model", "simulator", "--horizons", "3", "--out", tmp_path / "g")
    assert result.exit_code == 2 and "--task" in result.stderr
    result = run(
        "grad-norm",
        "--model",
        "simulator",
        "--task",
        "cancer",
        "--horizons",
        "3,x",
        "--out",
        tmp_path / "g",
    )
    assert result.exit_code == 2 and "comma-separated integers" in result.stderr
    result = run(
        "grad-norm",
        "--model",
        tmp_path / "m",
        "--task",
        "bacteria",
        "--horizons",
        "3",
        "--out",
        tmp_path / "g",
    )
    assert result.exit_code == 2 and "fitted on cancer, not bacteria" in result.stderr
    # Through the fitted model it works where the context allows.
    result = run(
        "grad-norm",
        "--model",
        tmp_path / "m",
        "--model",
        "simulator",
        "--horizons",
        "3,6",
        "--samples",
        3,
        "--out",
        tmp_path / "g",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)["models"]) == {"awm-lstm", "simulator"}
    assert not (tmp_path / "l3").exists()


def test_same_seed_same_numbers(tmp_path):
    args = (
        "grad-norm",
        "--model",
        "simulator",
        "--task",
        "bounce",
        "--horizons",
        "5,20",
        "--samples",
        3,
        "--seed",
        4,
        "--json",
    )
    a = json.loads(run(*args, "--out", tmp_path / "a").stdout)
    b = json.loads(run(*args, "--out", tmp_path / "b").stdout)
    assert a["models"] == b["models"]


def test_models_imagine_from_the_first_observation_they_were_fitted_on(tmp_path):
    # The double pendulum's reset placeholder (its goal state) depends on the horizon; a model
    # evaluated at a shorter horizon must still start from the observation of its own data.
    from awmctl.cli.subjects import load_subjects

    assert (
        run(
            "collect", "--task", "double-pendulum", "--horizon", 6, "-n", 8, "--out", tmp_path / "d"
        ).exit_code
        == 0
    )
    fitted = run(
        "fit-model",
        "--data",
        tmp_path / "d",
        "--model",
        "markov-mlp",
        "--width",
        8,
        "--steps",
        2,
        "--log-every",
        1,
        "--out",
        tmp_path / "m",
    )
    assert fitted.exit_code == 0, fitted.stderr
    task, _, obs0 = load_subjects([str(tmp_path / "m")], None, 3, {})
    fitted_on = make_task("double-pendulum", 6)
    assert task.horizon == 3 and task.dt == fitted_on.dt
    np.testing.assert_array_equal(
        np.asarray(obs0), np.asarray(analysis.initial_observation(fitted_on))
    )
    assert not np.allclose(np.asarray(obs0), np.asarray(analysis.initial_observation(task)))
