"""The paper's analyses of *why* a world model gives good or bad policy gradients.

* :func:`first_action_gradients`: the norm of the Jacobian of the imagined state at step H with
  respect to the first action, ``||d s_H / d a_1||``, and of the imagined return's gradient with
  respect to it, through any model's ``start``/``step`` imagination (Figure 3);
* :func:`fit_growth`: is a norm's growth with H exponential (log-norm linear in H) or polynomial
  (log-norm linear in log H)? :func:`fit_bound_forms`: which of the paper's two bounds' forms,
  exponential (O(eta^H)) or a cubic polynomial (O(H^3)), predicts held-out horizons better?
* :func:`first_action_landscape`: the return and the final state as functions of the first
  action (Figure 4, 1-D); :func:`policy_plane`: the return on a plane through a policy's
  parameters spanned by two filter-normalised random directions (Li et al., 2018);
* :func:`roughness`: total variation and number of strict local maxima of a curve or surface;
* :func:`model_view`, :func:`model_hides_optimum` and :func:`model_overpromises`: does a fitted
  model see the best plan found through the simulator (or score it below the policy it has), and
  does it promise the policy more than the task pays?

Everything is a pure function; grids are evaluated with ``vmap`` in compiled chunks of a fixed
size (:func:`map_in_chunks`) so memory stays bounded and the last chunk needs no recompilation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.models import AbstractWorldModel, imagine
from awmctl.normalize import Normalizer
from awmctl.policies import MarkovPolicy
from awmctl.rollouts import imagined_return, predicted_return
from awmctl.tasks import Task, observation, reset_key, rollout

Progress = Callable[[int, int], None]


def initial_observation(task: Task) -> Float[Array, " obs"]:
    """The task's first observation ``[x_0, 0]`` (for a task with random resets, the one of
    ``jax.random.key(0)``)."""
    return observation(task.initial_state(reset_key(jax.random.key(0))), 0)


def imagined_final_and_return(
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    actions: Float[Array, "H act"],
) -> tuple[Float[Array, " state"], Float[Array, ""]]:
    """Open-loop imagination of ``actions``: the last predicted state and the return.

    The return applies the task's true reward to the predicted states with the known step
    index (as BPO does), so ``task`` must be the task at horizon ``len(actions)``.
    """
    predicted = imagine(model, obs0, actions)[:, :-1]  # [H, state]
    states = jnp.concatenate([obs0[None, :-1], predicted])
    rewards = jax.vmap(task.reward)(states[:-1], actions, jnp.arange(actions.shape[0]), states[1:])
    return predicted[-1], jnp.sum(rewards)


def first_action_gradients(
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    actions: Float[Array, "S H act"],
) -> tuple[Float[Array, " S"], Float[Array, " S"]]:
    """``(||d s_H / d a_1||_F, ||d R / d a_1||)`` for each of S action sequences.

    One reverse-mode pass per sequence gives both (``jax.jacrev`` of the pair; reverse mode
    because the adaptive ODE solver of the double pendulum differentiates only that way).
    """

    def one(seq):
        def of_first(a1):
            return imagined_final_and_return(model, task, obs0, seq.at[0].set(a1))

        jac_state, grad_return = jax.jacrev(of_first)(seq[0])
        return jnp.linalg.norm(jac_state), jnp.linalg.norm(grad_return)

    return jax.vmap(one)(actions)


def first_action_landscape(
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    first: Float[Array, " P"],
    rest: Float[Array, "R act"],
    chunk: int = 256,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return and final state for each value of the first action's first component.

    The other components of the first action and the later actions ``rest`` (``R = H - 1``)
    are held fixed. Returns ``(returns [P], final_states [P, state])`` as NumPy arrays.
    """

    def one(value):
        a1 = jnp.zeros((task.action_size,), rest.dtype).at[0].set(value)
        return imagined_final_and_return(model, task, obs0, jnp.concatenate([a1[None], rest]))

    finals, returns = map_in_chunks(one, first, chunk, progress)
    return returns, finals


def filter_normalized_direction(params: Any, key: PRNGKeyArray) -> Any:
    """A random direction in parameter space scaled filter by filter (Li et al., 2018).

    Each row of a weight matrix (the weights into one unit) is a filter: its Gaussian direction
    is rescaled to that row's norm, so moving one unit along the direction changes every unit
    by its own scale. Biases and other vectors get no component (as in the paper's recipe for
    biases), so the plane shows the effect of the weights.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for leaf, k in zip(leaves, keys):
        if leaf.ndim < 2:
            out.append(jnp.zeros_like(leaf))
            continue
        d = jax.random.normal(k, leaf.shape, leaf.dtype)
        axes = tuple(range(1, leaf.ndim))
        scale = jnp.linalg.norm(leaf, axis=axes, keepdims=True) / jnp.maximum(
            jnp.linalg.norm(d, axis=axes, keepdims=True), 1e-12
        )
        out.append(d * scale)
    return jax.tree_util.tree_unflatten(treedef, out)


def perturbable(policy: MarkovPolicy) -> tuple[Any, Any]:
    """Split a policy into its trainable float arrays and the rest (input normaliser included,
    which is data statistics, not a parameter)."""
    spec = jax.tree_util.tree_map(
        lambda x: False if isinstance(x, Normalizer) else eqx.is_inexact_array(x),
        policy,
        is_leaf=lambda x: isinstance(x, Normalizer),
    )
    return eqx.partition(policy, spec)


def policy_plane(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    directions: tuple[Any, Any],
    alphas: Float[Array, " P"],
    chunk: int = 256,
    progress: Progress | None = None,
) -> np.ndarray:
    """Return of the deterministic policy ``theta + a d1 + b d2`` for every ``(a, b)`` in
    ``alphas x alphas``, imagined through ``model`` (the true return when it is the simulator).
    Returns ``[P, P]`` with rows indexed by ``a``."""
    params, rest = perturbable(policy)
    d1, d2 = directions
    grid = jnp.stack(jnp.meshgrid(alphas, alphas, indexing="ij"), axis=-1).reshape(-1, 2)

    def one(ab):
        moved = jax.tree_util.tree_map(lambda p, u, v: p + ab[0] * u + ab[1] * v, params, d1, d2)
        ret, _ = imagined_return(
            eqx.combine(moved, rest),
            model,
            task,
            obs0,
            jax.random.key(0),
            stop_input=False,
            deterministic=True,
        )
        return ret

    values = map_in_chunks(one, grid, chunk, progress)
    return values.reshape(alphas.shape[0], alphas.shape[0])


def map_in_chunks(fn: Callable, inputs: Array, chunk: int, progress: Progress | None = None) -> Any:
    """``vmap(fn)`` over the leading axis of ``inputs``, one compiled call per ``chunk`` rows.

    The last chunk is padded (with its first row) to the chunk size so that every call reuses
    one compilation; ``progress(done, total)`` is called after each chunk. Returns NumPy.
    """
    n = inputs.shape[0]
    chunk = max(1, min(chunk, n))
    compiled = eqx.filter_jit(jax.vmap(fn))
    pieces = []
    for start in range(0, n, chunk):
        part = inputs[start : start + chunk]
        size = part.shape[0]
        if size < chunk:
            part = jnp.concatenate([part, jnp.repeat(part[:1], chunk - size, axis=0)])
        out = jax.tree_util.tree_map(lambda x, n=size: np.asarray(x)[:n], compiled(part))
        pieces.append(out)
        if progress is not None:
            progress(start + size, n)
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *pieces)


# ------------------------------------------------------------------------------ statistics


def roughness(values: np.ndarray) -> dict[str, float]:
    """Total variation and strict local maxima of a 1-D curve or a 2-D surface.

    Total variation is the sum of absolute differences between neighbours (along both axes for
    a surface); a local maximum is an interior point above all its neighbours (2 on a curve,
    8 on a surface). Non-finite values make both undefined (NaN).
    """
    v = np.asarray(values, np.float64)
    if not np.all(np.isfinite(v)):
        return {"total_variation": float("nan"), "local_maxima": float("nan")}
    if v.ndim == 1:
        tv = float(np.abs(np.diff(v)).sum())
        inner = v[1:-1]
        maxima = int(np.sum((inner > v[:-2]) & (inner > v[2:])))
        return {"total_variation": tv, "local_maxima": maxima}
    tv = float(np.abs(np.diff(v, axis=0)).sum() + np.abs(np.diff(v, axis=1)).sum())
    centre = v[1:-1, 1:-1]
    is_max = np.ones_like(centre, dtype=bool)
    rows, cols = v.shape
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_max &= centre > v[1 + di : rows - 1 + di, 1 + dj : cols - 1 + dj]
    return {"total_variation": tv, "local_maxima": int(is_max.sum())}


def fit_growth(horizons: np.ndarray, norms: np.ndarray) -> dict[str, Any]:
    """Least-squares fits of ``log(norm)`` against H and against log H.

    ``exponential_rate`` is the slope per step (norm ~ e^{rate H}); ``polynomial_degree`` the
    slope against log H (norm ~ H^degree). Each has its R^2, and ``better`` names the fit with
    the larger R^2 (both fits have two parameters, so R^2 compares them fairly). Needs at least
    three horizons with a positive, finite norm; otherwise the fits are None.
    """
    h = np.asarray(horizons, np.float64)
    n = np.asarray(norms, np.float64)
    ok = np.isfinite(n) & (n > 0)
    if ok.sum() < 3:
        return {
            "exponential_rate": None,
            "exponential_r2": None,
            "polynomial_degree": None,
            "polynomial_r2": None,
            "better": None,
            "points": int(ok.sum()),
        }
    y = np.log(n[ok])

    def line(x):
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        total = np.sum((y - y.mean()) ** 2)
        r2 = 1.0 - np.sum(resid**2) / total if total > 0 else 1.0
        return float(slope), float(r2)

    rate, r2_exp = line(h[ok])
    degree, r2_poly = line(np.log(h[ok]))
    return {
        "exponential_rate": rate,
        "exponential_r2": r2_exp,
        "polynomial_degree": degree,
        "polynomial_r2": r2_poly,
        "better": "exponential" if r2_exp > r2_poly else "polynomial",
        "points": int(ok.sum()),
    }


def _log10_errors(predicted: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """log10(predicted / norm); a prediction at or below 0 (a polynomial crossing zero where the
    norm is positive) misses by 300 decades."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.maximum(predicted, 1e-300) / norms)


def _exponential(h: np.ndarray, n: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    rate, intercept = np.polyfit(h, np.log(n), 1)
    return lambda x: np.exp(intercept + rate * x)


def _cubic(h: np.ndarray, n: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    # Non-negative coefficients: a growth no faster than H^3, positive at every horizon (a free
    # cubic fitted to a few points swings below zero between or beyond them). Relative least
    # squares (rows scaled by 1/norm): norms span decades, and an unweighted fit would see only
    # the largest.
    from scipy.optimize import nnls

    powers = np.vander(h, 4)  # H^3, H^2, H, 1
    coeffs, _ = nnls(powers / n[:, None], np.ones_like(n))
    return np.poly1d(coeffs)


def fit_bound_forms(horizons: np.ndarray, norms: np.ndarray) -> dict[str, Any]:
    """Fit the forms of the paper's two bounds on gradient growth to norms measured at several
    horizons, and say which predicts better.

    * exponential, ``norm = c eta^H`` (the recurrent bound O(eta^H)): least squares on log-norm,
      2 parameters; ``eta`` per step.
    * cubic polynomial, ``norm = c0 + c1 H + c2 H^2 + c3 H^3`` with every c >= 0 (the
      self-attention bound O(H^3): growth no faster than H^3), relative non-negative least
      squares, 4 parameters; ``cubic`` holds (c3, c2, c1, c0).

    Both are scored on the log scale (an error is log10(predicted / measured)): ``*_heldout`` is
    the root mean square error of leave-one-out predictions (each horizon predicted by the fit to
    the others), ``*_aic`` Akaike's criterion n ln(RSS / n) + 2k of the fit to all. ``better`` is
    the form with the smaller held-out error. Needs six or more horizons with a positive, finite
    norm (a cubic fitted to five points leaves one); otherwise every field but ``points`` is None.
    """
    h = np.asarray(horizons, np.float64)
    n = np.asarray(norms, np.float64)
    ok = np.isfinite(n) & (n > 0)
    h, n = h[ok], n[ok]
    found: dict[str, Any] = {"points": int(ok.sum())}
    keys = ("eta", "cubic", "exponential_heldout", "cubic_heldout")
    if h.size < 6:
        return found | dict.fromkeys((*keys, "exponential_aic", "cubic_aic", "better"))
    forms = {"exponential": (_exponential, 2), "cubic": (_cubic, 4)}
    for name, (fit, params) in forms.items():
        whole = _log10_errors(fit(h, n)(h), n)
        rss = max(float(np.sum(whole**2)), 1e-30)  # an exact fit: a finite criterion
        heldout = [
            _log10_errors(fit(np.delete(h, i), np.delete(n, i))(h[i : i + 1]), n[i : i + 1])[0]
            for i in range(h.size)
        ]
        found[f"{name}_heldout"] = float(np.sqrt(np.mean(np.square(heldout))))
        found[f"{name}_aic"] = float(h.size * np.log(rss / h.size) + 2 * params)
    found["eta"] = float(np.exp(np.polyfit(h, np.log(n), 1)[0]))
    leading = _cubic(h, n).coeffs  # poly1d drops leading zeros: pad back to (c3, c2, c1, c0)
    found["cubic"] = [0.0] * (4 - leading.size) + [float(c) for c in leading]
    found["better"] = min(forms, key=lambda name: found[f"{name}_heldout"])
    return found


@np.errstate(invalid="ignore", over="ignore")  # inf norms (a diverged model) stay inf/NaN
def spread(values: np.ndarray) -> dict[str, float]:
    """Mean, geometric mean, median and the 10th/90th percentiles of positive norms."""
    v = np.asarray(values, np.float64)
    positive = v[v > 0]
    return {
        "mean": float(v.mean()),
        "geomean": float(np.exp(np.log(positive).mean())) if positive.size else 0.0,
        "median": float(np.median(v)),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
    }


def growth_summaries(
    norms: Float[np.ndarray, "horizon quantity sample"],
    horizons: list[int],
    quantities: tuple[str, ...],
) -> dict[str, Any]:
    """One model's gradient norms against horizon, per quantity: the :func:`spread` over the
    samples at each horizon (keyed by the horizon as a string) and, as ``{quantity}_growth``, the
    :func:`fit_growth` of their geometric means."""
    entry: dict[str, Any] = {}
    for q, quantity in enumerate(quantities):
        stats = [spread(norms[j, q]) for j in range(len(horizons))]
        entry[quantity] = {str(h): s for h, s in zip(horizons, stats)}
        entry[f"{quantity}_growth"] = fit_growth(
            np.asarray(horizons), np.asarray([s["geomean"] for s in stats])
        )
    return entry


def curve_comparison(
    curve: np.ndarray, reference: np.ndarray, grid: np.ndarray
) -> dict[str, float]:
    """How a model's return curve stands against the simulator's on the same grid.

    ``rmse``: root-mean-square difference; ``argmax_distance``: how far its best first action
    lies from the simulator's; ``regret``: what the simulator loses by playing the model's best
    action instead of its own.
    """
    curve, reference = np.asarray(curve, np.float64), np.asarray(reference, np.float64)
    best, ref_best = int(np.argmax(curve)), int(np.argmax(reference))
    return {
        "rmse": float(np.sqrt(np.mean((curve - reference) ** 2))),
        "argmax": float(grid[best]),
        "argmax_distance": float(abs(grid[best] - grid[ref_best])),
        "regret": float(reference[ref_best] - reference[best]),
    }


def final_state_errors(final_states: np.ndarray, reference: int) -> np.ndarray:
    """Per model and grid point (``final_states``: [models, points, state]), the final state's
    mean squared error against model ``reference``'s (the simulator)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged model: inf/NaN, as such
        return np.mean((final_states - final_states[reference][None]) ** 2, axis=-1)


@np.errstate(over="ignore", invalid="ignore")  # a diverged model's curve is inf/NaN: as such
def landscape_summaries(
    arrays: dict[str, np.ndarray],
    state_errors: np.ndarray | None,
    labels: list[str],
    reference: int,
) -> dict[str, Any]:
    """Roughness of every model's return curve (1-D: ``arrays["grid"]`` and ``state_errors``
    given) or surface (2-D: ``state_errors`` None), and how it compares with the simulator's
    (model ``reference``)."""
    returns = arrays["returns"]
    results: dict[str, Any] = {}
    for i, label in enumerate(labels):
        entry: dict[str, Any] = {"roughness": roughness(returns[i])}
        if state_errors is None:
            centre = returns.shape[1] // 2
            entry["centre_return"] = float(returns[i][centre, centre])
            entry["rmse_vs_simulator"] = float(
                np.sqrt(np.mean((returns[i] - returns[reference]) ** 2))
            )
        else:
            entry.update(curve_comparison(returns[i], returns[reference], arrays["grid"]))
            entry["max_return"] = float(np.max(returns[i]))
            entry["final_state_mse_vs_simulator"] = float(np.mean(state_errors[i]))
        results[label] = entry
    return results


#: below this score a run is worth a diagnosis (the converged defaults' target)
WELL_SOLVED = 0.95


@eqx.filter_jit
def model_view(
    model: AbstractWorldModel, task: Task, policy: MarkovPolicy, plan: Float[Array, "H act"]
) -> dict[str, Float[Array, ""]]:
    """The model's returns, replayed open loop from the evaluation's start (reset key 0), of the
    policy's own deterministic episode (``policy``) and of the action sequence ``plan``
    (``plan``), and the policy's real return (``policy_real``)."""
    episode = rollout(task, policy.controller(), jax.random.key(0))
    obs0 = episode.observations[0]
    return {
        "policy": predicted_return(model, task, obs0, episode.actions),
        "plan": predicted_return(model, task, obs0, plan),
        "policy_real": jnp.sum(episode.rewards),
    }


def model_hides_optimum(model_policy: float, model_plan: float, score: float) -> bool:
    """Whether a run short of :data:`WELL_SOLVED` is limited by what its model has seen: the model
    scores the best plan (really better than the policy) below the policy's own episode, so no
    policy optimiser can find that plan through the model."""
    return score < WELL_SOLVED and model_plan < model_policy


#: how much more than the task pays a model may promise a policy (in units of R_opt - R_random)
#: before a run short of :data:`WELL_SOLVED` is said to exploit it
OVERPROMISE = 0.05


def model_overpromises(
    model_policy: float, real_policy: float, r_random: float, r_opt: float, score: float
) -> bool:
    """Whether a run short of :data:`WELL_SOLVED` has a policy exploiting its model: the model
    promises the policy's own episode more than the task pays for it, by more than
    :data:`OVERPROMISE` of the span between a random policy and the best plan."""
    return score < WELL_SOLVED and model_policy - real_policy > OVERPROMISE * (r_opt - r_random)
