"""The development set's user tasks: three problems written as a user would write their own
(docs/tasks.md, "Your own task"), each with a structure the paper's eight tasks lack. Defaults
of awmctl are chosen on these (with the paper's tasks); they are never the held-out set.

    awmctl optimize-policy --online --task benchmarks/tasks/dev_tasks.py:LinearHarvest --horizon 20
    ...

* ``LinearHarvest`` -- a linear-in-control fishery (Clark, *Mathematical Bioeconomics*, 1976, ch.
  2):
  the optimum is bang-bang (no harvest, then a singular arc, then full effort at the end);
* ``Balance`` -- an inverted pendulum held upright from a random start: unstable dynamics and
  random initial states;
* ``Park`` -- a lightly damped oscillator to be brought to rest at the origin, with the reward
  paid only at the last step.

Every task integrates its ODE with fixed-step RK4 (sub-steps of at most ``max_dt``) over a
fixed duration ``T``: the horizon sets the step ``dt = T / H``. Actions are clipped to [-1, 1].
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

import awmctl

INF = math.inf


def rk4(f, x, u, dt, max_dt):
    """``x`` after ``dt`` of ``x' = f(x, u)`` with RK4 steps of at most ``max_dt``."""
    n = max(1, math.ceil(dt / max_dt - 1e-9))
    h = dt / n

    def one(x, _):
        k1 = f(x, u)
        k2 = f(x + 0.5 * h * k1, u)
        k3 = f(x + 0.5 * h * k2, u)
        k4 = f(x + h * k3, u)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(one, x, None, length=n)[0]


class LinearHarvest(awmctl.Task):
    """Logistic stock x' = r x (1 - x) - q E x, effort E = (a + 1) / 2 in [0, 1]; profit per
    unit time (p q x - c) E. Linear in the control: bang-bang with a singular arc."""

    horizon: int = eqx.field(static=True)
    T: float = eqx.field(static=True)
    r: float = eqx.field(static=True)
    q: float = eqx.field(static=True)
    p: float = eqx.field(static=True)
    c: float = eqx.field(static=True)
    x0: float = eqx.field(static=True)

    name: ClassVar[str] = "harvest-linear"
    state_size: ClassVar[int] = 1
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple] = ((0.0, INF),)

    def __init__(
        self,
        horizon: int = 20,
        T: float = 10.0,
        r: float = 1.0,
        q: float = 1.0,
        p: float = 2.0,
        c: float = 0.4,
        x0: float = 0.3,
    ):
        self.horizon = int(horizon)
        self.T = float(T)
        self.r = float(r)
        self.q = float(q)
        self.p = float(p)
        self.c = float(c)
        self.x0 = float(x0)

    @property
    def dt(self):
        return self.T / self.horizon

    @property
    def params(self):
        return {"T": self.T, "r": self.r, "q": self.q, "p": self.p, "c": self.c, "x0": self.x0}

    def initial_state(self, key):
        return jnp.array([self.x0])

    def _effort(self, action):
        return (jnp.clip(action[0], -1.0, 1.0) + 1.0) / 2

    def transition(self, state, action, k):
        effort = self._effort(action)
        f = lambda x, e: self.r * x * (1 - x) - self.q * e * x
        return jnp.maximum(rk4(f, state, effort, self.dt, 0.1), 0.0)

    def reward(self, state, action, k, next_state):
        return (self.p * self.q * state[0] - self.c) * self._effort(action) * self.dt


class Balance(awmctl.Task):
    """An inverted pendulum, theta'' = (g / l) sin(theta) - b theta' + u_max u, held near upright
    from a random start theta, omega ~ U(-0.3, 0.3); cost theta^2 + 0.1 omega^2 + 0.01 u^2."""

    horizon: int = eqx.field(static=True)
    T: float = eqx.field(static=True)
    g_over_l: float = eqx.field(static=True)
    b: float = eqx.field(static=True)
    u_max: float = eqx.field(static=True)
    spread: float = eqx.field(static=True)

    name: ClassVar[str] = "balance"
    state_size: ClassVar[int] = 2
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple] = ((-INF, INF), (-INF, INF))

    def __init__(
        self,
        horizon: int = 20,
        T: float = 2.0,
        g_over_l: float = 10.0,
        b: float = 0.1,
        u_max: float = 5.0,
        spread: float = 0.3,
    ):
        self.horizon = int(horizon)
        self.T = float(T)
        self.g_over_l = float(g_over_l)
        self.b = float(b)
        self.u_max = float(u_max)
        self.spread = float(spread)

    @property
    def dt(self):
        return self.T / self.horizon

    @property
    def params(self):
        return {
            "T": self.T,
            "g_over_l": self.g_over_l,
            "b": self.b,
            "u_max": self.u_max,
            "spread": self.spread,
        }

    def initial_state(self, key):
        return jax.random.uniform(key, (2,), minval=-self.spread, maxval=self.spread)

    def transition(self, state, action, k):
        u = jnp.clip(action[0], -1.0, 1.0)

        def f(x, u):
            return jnp.stack([x[1], self.g_over_l * jnp.sin(x[0]) - self.b * x[1] + self.u_max * u])

        return rk4(f, state, u, self.dt, 0.02)

    def reward(self, state, action, k, next_state):
        u = jnp.clip(action[0], -1.0, 1.0)
        return -(state[0] ** 2 + 0.1 * state[1] ** 2 + 0.01 * u**2) * self.dt


class Park(awmctl.Task):
    """A lightly damped oscillator x'' = -w^2 x - 2 zeta w x' + u_max u (w = 2 pi: three
    periods in T = 3) to be at rest at the origin at the end. The reward is paid once, at the
    last step: -(x^2 + (x' / w)^2) of the final state."""

    horizon: int = eqx.field(static=True)
    T: float = eqx.field(static=True)
    omega: float = eqx.field(static=True)
    zeta: float = eqx.field(static=True)
    u_max: float = eqx.field(static=True)
    x0: float = eqx.field(static=True)

    name: ClassVar[str] = "park"
    state_size: ClassVar[int] = 2
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple] = ((-INF, INF), (-INF, INF))

    def __init__(
        self,
        horizon: int = 20,
        T: float = 3.0,
        omega: float = 2 * math.pi,
        zeta: float = 0.05,
        u_max: float = 4.0,
        x0: float = 1.0,
    ):
        self.horizon = int(horizon)
        self.T = float(T)
        self.omega = float(omega)
        self.zeta = float(zeta)
        self.u_max = float(u_max)
        self.x0 = float(x0)

    @property
    def dt(self):
        return self.T / self.horizon

    @property
    def params(self):
        return {
            "T": self.T,
            "omega": self.omega,
            "zeta": self.zeta,
            "u_max": self.u_max,
            "x0": self.x0,
        }

    def initial_state(self, key):
        return jnp.array([self.x0, 0.0])

    def transition(self, state, action, k):
        u = jnp.clip(action[0], -1.0, 1.0)

        def f(x, u):
            w = self.omega
            return jnp.stack([x[1], -(w**2) * x[0] - 2 * self.zeta * w * x[1] + self.u_max * u])

        return rk4(f, state, u, self.dt, 0.02)

    def reward(self, state, action, k, next_state):
        final = -(next_state[0] ** 2 + (next_state[1] / self.omega) ** 2)
        return jnp.where(k == self.horizon - 1, final, 0.0)
