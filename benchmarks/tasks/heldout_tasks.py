"""The held-out set's user tasks: two textbook optimal-control examples, written to their
sources' statements (not to awmctl's habits), used only to report defaults chosen elsewhere.

* ``VanDerPol`` -- the Van der Pol oscillator of CasADi's direct-shooting examples (Andersson,
  Gillis, Horn, Rawlings, Diehl, "CasADi", Math. Prog. Comp. 2019; ``examples/python/
  direct_single_shooting.py``): x1' = (1 - x2^2) x1 - x2 + u, x2' = x1, x(0) = (0, 1),
  minimise the integral of x1^2 + x2^2 + u^2 over T = 10 with |u| <= 1 (the example's state
  bound x1 >= -0.25 is left out: awmctl's tasks have no path constraints).
* ``Rayleigh`` -- the Rayleigh problem with control constraints (Maurer and Augustin,
  "Sensitivity analysis and real-time control of parametric optimal control problems using
  boundary value methods", 2001): x1' = x2, x2' = -x1 + x2 (1.4 - 0.14 x2^2) + 4 u,
  x(0) = (-5, -5), minimise the integral of u^2 + x1^2 over T = 4.5 with |u| <= 1.

The reward is minus the running cost over each step (left-point rule); RK4 with sub-steps of at
most 0.05 integrates the dynamics; actions are clipped to the control bounds.
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

import awmctl

INF = math.inf


def integrate(f, x, u, dt):
    n = max(1, math.ceil(dt / 0.05 - 1e-9))
    h = dt / n

    def rk4_step(x, _):
        a = f(x, u)
        b = f(x + h / 2 * a, u)
        c = f(x + h / 2 * b, u)
        d = f(x + h * c, u)
        return x + h * (a + 2 * b + 2 * c + d) / 6, None

    return jax.lax.scan(rk4_step, x, None, length=n)[0]


class VanDerPol(awmctl.Task):
    horizon: int = eqx.field(static=True)
    T: float = eqx.field(static=True)

    name: ClassVar[str] = "van-der-pol"
    state_size: ClassVar[int] = 2
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple] = ((-INF, INF), (-INF, INF))

    def __init__(self, horizon: int = 20, T: float = 10.0):
        self.horizon = int(horizon)
        self.T = float(T)

    @property
    def dt(self):
        return self.T / self.horizon

    @property
    def params(self):
        return {"T": self.T}

    def initial_state(self, key):
        return jnp.array([0.0, 1.0])

    def transition(self, state, action, k):
        def f(x, u):
            return jnp.stack([(1 - x[1] ** 2) * x[0] - x[1] + u, x[0]])

        return integrate(f, state, jnp.clip(action[0], -1.0, 1.0), self.dt)

    def reward(self, state, action, k, next_state):
        u = jnp.clip(action[0], -1.0, 1.0)
        return -(state[0] ** 2 + state[1] ** 2 + u**2) * self.dt


class Rayleigh(awmctl.Task):
    horizon: int = eqx.field(static=True)
    T: float = eqx.field(static=True)

    name: ClassVar[str] = "rayleigh"
    state_size: ClassVar[int] = 2
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple] = ((-INF, INF), (-INF, INF))

    def __init__(self, horizon: int = 20, T: float = 4.5):
        self.horizon = int(horizon)
        self.T = float(T)

    @property
    def dt(self):
        return self.T / self.horizon

    @property
    def params(self):
        return {"T": self.T}

    def initial_state(self, key):
        return jnp.array([-5.0, -5.0])

    def transition(self, state, action, k):
        def f(x, u):
            return jnp.stack([x[1], -x[0] + x[1] * (1.4 - 0.14 * x[1] ** 2) + 4 * u])

        return integrate(f, state, jnp.clip(action[0], -1.0, 1.0), self.dt)

    def reward(self, state, action, k, next_state):
        u = jnp.clip(action[0], -1.0, 1.0)
        return -(u**2 + state[0] ** 2) * self.dt
