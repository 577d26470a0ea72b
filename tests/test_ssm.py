"""The state-space backbone (a diagonal linear recurrence, LRU) and the awm-ssm / hwm-ssm models.

The associative scan against the step-by-step recurrence (values and gradients), gradients
against finite differences in float64, eigenvalues inside the unit circle whatever the optimiser
does, the model's size, and the command line end to end with a resume (overfitting a tiny
dataset, the cache against the full pass and the AWM's gradient paths: test_models.py, which runs
every model).
"""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run
from jax.test_util import check_grads

import awmctl
from awmctl import optim
from awmctl.backbones import StateSpace
from awmctl.ssm import diagonal_scan, diagonal_step

WIDTH, STATE, T = 6, 5, 9


def stepped(backbone: StateSpace, tokens):
    """The backbone one token at a time, as imagination runs it."""

    def body(cache, item):
        position, token = item
        return backbone.step(cache, token, position)

    cache = backbone.init_cache(tokens.shape[0], tokens.dtype)
    return jax.lax.scan(body, cache, (jnp.arange(tokens.shape[0]), tokens))[1]


# The values: test_models.py (stepping against the full pass, every model); the gradients of the
# hand-written backward pass: against finite differences below. This float32 comparison of both
# paths' gradients runs with `make test-all`.
@pytest.mark.slow
def test_the_scan_equals_the_recurrence_step_by_step_in_values_and_gradients():
    kb, kt, ky = jax.random.split(jax.random.key(0), 3)
    backbone = StateSpace(WIDTH, layers=2, state_width=STATE, key=kb)
    tokens = jax.random.normal(kt, (T, WIDTH))
    targets = jax.random.normal(ky, (T, WIDTH))
    np.testing.assert_allclose(backbone(tokens), stepped(backbone, tokens), rtol=1e-5, atol=1e-5)

    def loss(model, x, forward):
        return jnp.sum((forward(model, x) - targets) ** 2)

    scan = jax.grad(loss, argnums=(0, 1))(backbone, tokens, lambda m, x: m(x))
    step = jax.grad(loss, argnums=(0, 1))(backbone, tokens, stepped)
    for a, b in zip(jax.tree.leaves(scan), jax.tree.leaves(step), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_scan_solves_the_recurrence_it_states():
    """h_t = lambda h_{t-1} + b_t with complex lambda, against NumPy's complex arithmetic."""
    rng = np.random.default_rng(0)
    lam = 0.9 * np.exp(1j * rng.uniform(0, np.pi, STATE))
    b = rng.normal(size=(T, STATE)) + 1j * rng.normal(size=(T, STATE))
    h, expected = np.zeros(STATE, complex), []
    for t in range(T):
        h = lam * h + b[t]
        expected.append(h)
    expected = np.array(expected)
    as_pair = lambda z: (jnp.asarray(z.real, jnp.float32), jnp.asarray(z.imag, jnp.float32))
    re, im = diagonal_scan(as_pair(lam), as_pair(b))
    np.testing.assert_allclose(np.asarray(re) + 1j * np.asarray(im), expected, rtol=1e-5, atol=1e-5)
    re1, im1 = diagonal_step(as_pair(lam), as_pair(expected[3]), as_pair(b[4]))
    np.testing.assert_allclose(
        np.asarray(re1) + 1j * np.asarray(im1), expected[4], rtol=1e-5, atol=1e-5
    )


def test_gradients_match_finite_differences_in_float64():
    with jax.enable_x64(True):
        backbone = StateSpace(4, layers=2, state_width=3, key=jax.random.key(1))
        tokens = jax.random.normal(jax.random.key(2), (5, 4), dtype=jnp.float64)
        params, static = eqx.partition(backbone, eqx.is_inexact_array)
        assert jax.tree.leaves(params)[0].dtype == jnp.float64

        def f(params, tokens):  # check_grads perturbs with NumPy arrays
            params = jax.tree.map(jnp.asarray, params)
            return jnp.sum(jnp.sin(eqx.combine(params, static)(jnp.asarray(tokens))))

        check_grads(f, (params, tokens), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)


def test_eigenvalues_stay_inside_the_unit_circle_under_a_huge_learning_rate():
    backbone = StateSpace(WIDTH, layers=2, state_width=STATE, key=jax.random.key(3))
    tokens = jax.random.normal(jax.random.key(4), (T, WIDTH))
    # a target that rewards remembering forever: the moduli are pushed towards 1
    target = jnp.cumsum(tokens, axis=0) * 10.0
    params, static = eqx.partition(backbone, eqx.is_inexact_array)
    optimizer = optim.adam(10.0)
    state = optimizer.init(params)

    @jax.jit
    def update(params, state):
        grads = jax.grad(lambda p: jnp.mean((eqx.combine(p, static)(tokens) - target) ** 2))(params)
        updates, state = optimizer.update(grads, state)
        return eqx.apply_updates(params, updates), state

    for _ in range(200):
        params, state = update(params, state)
    trained = eqx.combine(params, static)
    moduli = jnp.concatenate([layer.moduli() for layer in trained.layers])
    assert bool(jnp.all(jnp.isfinite(moduli))) and float(jnp.max(moduli)) < 1.0
    assert bool(jnp.all(jnp.isfinite(trained(tokens))))


def test_the_state_space_awm_has_the_transformer_awms_size():
    """(Overfitting a tiny dataset and stepping against the full pass: test_models.py, which
    runs every trainable model, these two included.)"""
    count = lambda m: sum(x.size for x in jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array)))
    ssm = awmctl.build_model("awm-ssm", 1, 1, 100, key=jax.random.key(0))
    transformer = awmctl.build_model("awm-transformer", 1, 1, 100, key=jax.random.key(0))
    assert abs(count(ssm) - count(transformer)) / count(transformer) < 0.02  # 69,411 and 69,043


H8 = ("--task", "cancer", "--horizon", 8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("ssm") / "data"
    assert run("collect", *H8, "-n", 32, "--out", out).exit_code == 0
    return out


def fit_command(data):
    return ["fit-model", "--data", data, "--model", "awm-ssm", "--state-width", 8, "--steps", 40,
            "--log-every", 10]  # fmt: skip


# The driver, resume and BPO are model-agnostic and the default suite runs them with every other
# model (test_fit_model.py, test_bpo.py, test_preemption.py); the state-space model itself is
# tested above and in test_models.py. Its own trip through the CLI: `make test-all`.
@pytest.mark.slow
def test_fit_model_resumes_exactly_and_offline_bpo_runs_through_it(tmp_path, data, interrupt_after):
    model, fit = tmp_path / "awm", fit_command(data)
    whole = run(*fit, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.stderr
    undo = interrupt_after(awmctl.ModelFit, "run_chunk", 2)
    assert run(*fit, "--out", model).exit_code == 130
    undo()
    resumed = run(*fit, "--out", model, "--json")
    assert resumed.exit_code == 0 and "Resuming from" in resumed.stderr, resumed.stderr
    assert (
        json.loads(resumed.stdout)["val_mse"]
        == json.loads((tmp_path / "whole" / "meta.json").read_text())["summary"]["val_mse"]
    )
    bpo = run("optimize-policy", "--model", model, "--data", data, "--steps", 20,
              "--log-every", 10, "--out", tmp_path / "policy")  # fmt: skip
    assert bpo.exit_code == 0, bpo.stderr


@pytest.mark.slow  # (as above)
def test_online_bpo_grad_norm_and_landscape_take_the_state_space_models(tmp_path, data):
    model = tmp_path / "awm"
    assert run(*fit_command(data), "--out", model).exit_code == 0
    for i, argv in enumerate((
        ["optimize-policy", "--online", *H8, "--model", "awm-ssm", "--env-steps", 64,
         "--warmup-steps", 32],
        ["optimize-policy", "--online", *H8, "--model", "hwm-ssm", "--env-steps", 64,
         "--warmup-steps", 32],
        ["grad-norm", "--model", model, "--horizons", "2,8", "--samples", 4],
        ["landscape", "--model", model, "--points", 5],
    )):  # fmt: skip
        result = run(*argv, "--out", tmp_path / f"{i}-{argv[0]}")
        assert result.exit_code == 0, f"{argv}: {result.stderr}"
