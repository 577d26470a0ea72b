"""Causal sequence backbones: a GPT-2-style transformer with a key-value cache, RNN cells, and a
diagonal linear recurrence (a state-space model).

Every backbone maps a sequence of token embeddings ``[T, width]`` to outputs ``[T, width]`` where
output ``t`` depends only on tokens ``0..t``, and offers the same computation one token at a
time (``init_cache`` / ``step``) for closed-loop imagination: the transformer keeps a key-value
cache (a rollout of H steps costs O(H) token steps), a recurrent net and the state-space model
keep their hidden states.
Stepping reproduces the full-sequence forward pass (tested to 1e-5).
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.layers import affine, as_row, dense, layer_norm
from awmctl.lstm import lstm_sequence, lstm_step
from awmctl.ssm import diagonal_scan, diagonal_step, eigenvalues

Cache = Any  # a pytree of arrays; its structure is private to each backbone


class AbstractBackbone(eqx.Module):
    """Causal sequence model over token embeddings of size ``width``."""

    width: eqx.AbstractVar[int]
    #: attention sees a set of tokens, not a sequence: the model adds position embeddings (and,
    #: as in the paper, embeds its inputs linearly; recurrent backbones get MLP embedders)
    order_blind: ClassVar[bool] = False
    #: the closed-loop cache holds every token's keys and values (it grows with the sequence);
    #: otherwise a fixed-size state
    kv_cache: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(
        self, tokens: Float[Array, "T width"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, "T width"]:
        """Full causal forward pass (training). ``key`` enables dropout where configured."""

    @abc.abstractmethod
    def init_cache(self, max_len: int, dtype: Any) -> Cache:
        """Empty cache for a sequence of at most ``max_len`` tokens."""

    @abc.abstractmethod
    def step(
        self, cache: Cache, token: Float[Array, " width"], position: Int[Array, ""]
    ) -> tuple[Cache, Float[Array, " width"]]:
        """Consume token number ``position`` and return its output (inference, no dropout)."""


# ------------------------------------------------------------------------------ transformer


class _Block(eqx.Module):
    """Pre-LayerNorm causal self-attention block (GPT-2): x + attn(ln(x)); x + mlp(ln(x))."""

    ln1: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    proj: eqx.nn.Linear
    ln2: eqx.nn.LayerNorm
    fc1: eqx.nn.Linear
    fc2: eqx.nn.Linear
    heads: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)

    def __init__(
        self, width: int, heads: int, mlp_width: int, dropout: float, *, key: PRNGKeyArray
    ):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.ln1 = eqx.nn.LayerNorm(width)
        self.qkv = eqx.nn.Linear(width, 3 * width, key=k1)
        self.proj = eqx.nn.Linear(width, width, key=k2)
        self.ln2 = eqx.nn.LayerNorm(width)
        self.fc1 = eqx.nn.Linear(width, mlp_width, key=k3)
        self.fc2 = eqx.nn.Linear(mlp_width, width, key=k4)
        self.heads = heads
        self.dropout = dropout

    def _split_heads(self, x: Float[Array, "*t width"]) -> Float[Array, "*t heads hd"]:
        return x.reshape(*x.shape[:-1], self.heads, x.shape[-1] // self.heads)

    def _mlp(self, x: Float[Array, "*rows width"]) -> Float[Array, "*rows width"]:
        return dense(self.fc2, jax.nn.gelu(dense(self.fc1, x)))

    def _drop(self, x: Array, key: PRNGKeyArray | None) -> Array:
        if key is None or self.dropout == 0.0:
            return x
        keep = jax.random.bernoulli(key, 1.0 - self.dropout, x.shape)
        return jnp.where(keep, x / (1.0 - self.dropout), jnp.zeros_like(x))

    def __call__(
        self, x: Float[Array, "T width"], key: PRNGKeyArray | None
    ) -> Float[Array, "T width"]:
        k1, k2 = (None, None) if key is None else jax.random.split(key)
        q, k, v = jnp.split(dense(self.qkv, layer_norm(self.ln1, x)), 3, axis=-1)
        # The 1/sqrt(d) scale on the queries ([T, width]) rather than on the scores ([heads, T, T]).
        q = q * (1.0 / math.sqrt(q.shape[-1] // self.heads))
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        scores = jnp.einsum("thd,shd->hts", q, k)
        causal = jnp.tril(jnp.ones((x.shape[0], x.shape[0]), dtype=bool))
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        # Softmax with the normalisation after the product with the values: it divides [heads, T,
        # head] outputs instead of [heads, T, T] weights (the same numbers, less work). The
        # product keeps the heads leading and the heads are moved back after it: asking the
        # product for [T, heads, head] directly made XLA:CPU compute it transposed, about 1 ms
        # more per transformer update (docs/benchmarks.md).
        weights = jnp.exp(scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
        attended = jnp.einsum("hts,shd->htd", weights, v) / jnp.sum(weights, axis=-1)[:, :, None]
        attended = jnp.swapaxes(attended, 0, 1)
        x = x + self._drop(dense(self.proj, attended.reshape(x.shape)), k1)
        return x + self._drop(self._mlp(layer_norm(self.ln2, x)), k2)

    def step(
        self,
        x: Float[Array, " width"],
        keys: Float[Array, "heads hd L"],
        values: Float[Array, "heads L hd"],
        position: Int[Array, ""],
    ) -> tuple[Float[Array, " width"], Float[Array, "heads hd L"], Float[Array, "heads L hd"]]:
        q, k, v = jnp.split(dense(self.qkv, layer_norm(self.ln1, x)), 3)
        q = q * (1.0 / math.sqrt(q.shape[-1] // self.heads))
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        # The cache is kept in the layout of the two products (keys [heads, hd, L], values
        # [heads, L, hd]), so that neither is transposed at every step.
        keys = jax.lax.dynamic_update_slice_in_dim(keys, k[:, :, None], position, axis=2)
        values = jax.lax.dynamic_update_slice_in_dim(values, v[:, None, :], position, axis=1)
        scores = jnp.einsum("hd,hds->hs", q, keys)
        visible = jnp.arange(keys.shape[-1]) <= position
        scores = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)
        attended = jnp.einsum("hs,hsd->hd", jax.nn.softmax(scores, axis=-1), values).reshape(
            x.shape
        )
        x = x + dense(self.proj, attended)
        return x + self._mlp(layer_norm(self.ln2, x)), keys, values


class Transformer(AbstractBackbone):
    """GPT-2-style causal transformer: pre-LayerNorm blocks and a final LayerNorm.

    It has no token or position tables of its own: callers embed their inputs (the world models
    add a learned step-index embedding).
    """

    order_blind: ClassVar[bool] = True
    kv_cache: ClassVar[bool] = True

    blocks: tuple[_Block, ...]
    ln_f: eqx.nn.LayerNorm
    width: int = eqx.field(static=True)

    def __init__(
        self,
        width: int = 48,
        layers: int = 2,
        heads: int = 3,
        mlp_width: int = 192,
        dropout: float = 0.0,
        *,
        key: PRNGKeyArray,
    ):
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.blocks = tuple(
            _Block(width, heads, mlp_width, dropout, key=k) for k in jax.random.split(key, layers)
        )
        self.ln_f = eqx.nn.LayerNorm(width)
        self.width = width

    def __call__(
        self, tokens: Float[Array, "T width"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, "T width"]:
        keys = (
            [None] * len(self.blocks)
            if key is None
            else list(jax.random.split(key, len(self.blocks)))
        )
        x = tokens
        for block, k in zip(self.blocks, keys):  # a handful of layers, not a loop over time
            x = block(x, k)
        return layer_norm(self.ln_f, x)

    def init_cache(self, max_len: int, dtype: Any) -> Cache:
        heads = self.blocks[0].heads
        hd = self.width // heads
        # One (keys, values) pair per layer, not arrays stacked over layers: a step then writes one
        # position of each in place instead of copying the whole cache into a new stack.
        return tuple(
            (jnp.zeros((heads, hd, max_len), dtype), jnp.zeros((heads, max_len, hd), dtype))
            for _ in self.blocks
        )

    def step(
        self, cache: Cache, token: Float[Array, " width"], position: Int[Array, ""]
    ) -> tuple[Cache, Float[Array, " width"]]:
        x = token
        new_cache = []
        for block, (keys, values) in zip(self.blocks, cache):
            x, keys, values = block.step(x, keys, values, position)
            new_cache.append((keys, values))
        return tuple(new_cache), layer_norm(self.ln_f, x)


# -------------------------------------------------------------------------------- recurrent


class _TanhCell(eqx.Module):
    """Elman RNN cell: h' = tanh(W x + U h + b)."""

    input_map: eqx.nn.Linear
    hidden_map: eqx.nn.Linear

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.input_map = eqx.nn.Linear(input_size, hidden_size, key=k1)
        self.hidden_map = eqx.nn.Linear(hidden_size, hidden_size, use_bias=False, key=k2)


RecurrentKind = Literal["lstm", "gru", "rnn"]


class Recurrent(AbstractBackbone):
    """A single-layer LSTM, GRU or tanh RNN; its output at each step is the hidden state.

    The cells hold Equinox's parameters (``eqx.nn.LSTMCell``/``GRUCell`` and a tanh cell), but
    the recurrence is written here in two parts, as cuDNN does: the input's share of every gate
    for all tokens at once (one matrix product before the loop), then per step only the hidden
    state's share. A step of the loop then does a fraction of the work. The LSTM's recurrence
    also has a hand-written backward pass (:func:`awmctl.lstm.lstm_sequence`).
    """

    cell: eqx.nn.LSTMCell | eqx.nn.GRUCell | _TanhCell
    kind: RecurrentKind = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(self, kind: RecurrentKind, width: int = 48, *, key: PRNGKeyArray):
        cells = {"lstm": eqx.nn.LSTMCell, "gru": eqx.nn.GRUCell, "rnn": _TanhCell}
        if kind not in cells:
            raise ValueError(f"unknown recurrent cell {kind!r}; choose lstm, gru or rnn")
        self.cell = cells[kind](width, width, key=key)
        self.kind = kind
        self.width = width

    def init_cache(self, max_len: int, dtype: Any) -> Cache:
        h = jnp.zeros((self.width,), dtype)
        return (h, h) if self.kind == "lstm" else h

    def _input_part(self, tokens: Float[Array, "*rows width"]) -> Float[Array, "*rows gates"]:
        """The input's contribution to the gates (bias included), for any number of tokens."""
        cell = self.cell
        if isinstance(cell, _TanhCell):
            return dense(cell.input_map, tokens)
        return affine(tokens, cell.weight_ih, cell.bias)

    def _recur(
        self, cache: Cache, pre: Float[Array, " gates"]
    ) -> tuple[Cache, Float[Array, " width"]]:
        """One step from the input's share of the gates ``pre`` and the previous state."""
        cell = self.cell
        if isinstance(cell, eqx.nn.LSTMCell):
            h, c, _ = lstm_step(*cache, pre, cell.weight_hh)
            return (h, c), h
        if isinstance(cell, eqx.nn.GRUCell):
            h = cache
            i_r, i_z, i_n = jnp.split(pre, 3)
            h_r, h_z, h_n = jnp.split(h @ cell.weight_hh.T, 3)
            reset, update = jax.nn.sigmoid(i_r + h_r), jax.nn.sigmoid(i_z + h_z)
            new = jnp.tanh(i_n + reset * (h_n + cell.bias_n))
            h = new + update * (h - new)
            return h, h
        h = jnp.tanh(pre + dense(cell.hidden_map, cache))
        return h, h

    def step(
        self, cache: Cache, token: Float[Array, " width"], position: Int[Array, ""]
    ) -> tuple[Cache, Float[Array, " width"]]:
        return self._recur(cache, self._input_part(token))

    def __call__(
        self, tokens: Float[Array, "T width"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, "T width"]:
        pre = self._input_part(tokens)
        if isinstance(
            self.cell, eqx.nn.LSTMCell
        ):  # the same recurrence with a cheaper backward pass
            return lstm_sequence(pre, self.cell.weight_hh)
        _, outputs = jax.lax.scan(
            lambda c, p: self._recur(c, p), self.init_cache(tokens.shape[0], tokens.dtype), pre
        )
        return outputs


# ------------------------------------------------------------------------------ state space


class _DiagonalLayer(eqx.Module):
    """One LRU layer (Orvieto et al., 2023): ``u = LN(x)``; ``h_t = lambda h_{t-1} + gamma (B
    u_t)`` with a complex diagonal ``lambda`` inside the unit circle; ``y = Re(C h) + D u``;
    ``x + GLU(gelu(y))``. ``B`` and ``C`` are complex, held as real and imaginary parts."""

    norm: eqx.nn.LayerNorm
    nu_log: Float[Array, " state"]
    theta_log: Float[Array, " state"]
    gamma_log: Float[Array, " state"]
    #: B's real parts (rows 0..state-1) over its imaginary parts: one product gives both
    b: Float[Array, "state2 width"]
    #: ``[Re C, -Im C]``: ``Re(C h)`` is one product with ``[Re h, Im h]``
    c: Float[Array, "width state2"]
    d: Float[Array, " width"]
    glu: eqx.nn.Linear

    def __init__(
        self,
        width: int,
        state: int,
        *,
        key: PRNGKeyArray,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = math.pi,
    ):
        kr, kp, kb, kc, kd, kg = jax.random.split(key, 6)
        # Eigenvalues uniform on the ring r_min <= |lambda| <= r_max (the LRU's initialisation):
        # slow modes, which a 100-step horizon needs, and none on the unit circle.
        u = jax.random.uniform(kr, (state,))
        modulus = jnp.sqrt(u * (r_max**2 - r_min**2) + r_min**2)
        self.nu_log = jnp.log(-jnp.log(modulus))
        self.theta_log = jnp.log(max_phase * jax.random.uniform(kp, (state,), minval=1e-3))
        # gamma = sqrt(1 - |lambda|^2) keeps each state's variance that of its input at the start
        self.gamma_log = jnp.log(jnp.sqrt(1.0 - modulus**2))
        self.b = jax.random.normal(kb, (2 * state, width)) / math.sqrt(2 * width)
        self.c = jax.random.normal(kc, (width, 2 * state)) / math.sqrt(state)
        self.d = jax.random.normal(kd, (width,))
        self.norm = eqx.nn.LayerNorm(width)
        self.glu = eqx.nn.Linear(width, 2 * width, key=kg)

    def _lambda(self) -> tuple[Array, Array]:
        return eigenvalues(self.nu_log, self.theta_log)

    def _inputs(self, u: Float[Array, "*rows width"]) -> tuple[Array, Array]:
        """``gamma * (B u)`` for every row of ``u``."""
        re, im = jnp.split(u @ self.b.T, 2, axis=-1)
        gamma = as_row(jnp.exp(self.gamma_log), re)
        return re * gamma, im * gamma

    def _output(
        self, x: Float[Array, "*rows width"], u: Array, h: tuple[Array, Array]
    ) -> Float[Array, "*rows width"]:
        y = jnp.concatenate(h, axis=-1) @ self.c.T + u * as_row(self.d, u)
        gate = dense(self.glu, jax.nn.gelu(y))
        value, weight = jnp.split(gate, 2, axis=-1)
        return x + value * jax.nn.sigmoid(weight)

    def __call__(self, x: Float[Array, "T width"]) -> Float[Array, "T width"]:
        u = layer_norm(self.norm, x)
        return self._output(x, u, diagonal_scan(self._lambda(), self._inputs(u)))

    def step(
        self, h: tuple[Array, Array], x: Float[Array, " width"]
    ) -> tuple[tuple[Array, Array], Float[Array, " width"]]:
        u = layer_norm(self.norm, x)
        h = diagonal_step(self._lambda(), h, self._inputs(u))
        return h, self._output(x, u, h)

    def moduli(self) -> Float[Array, " state"]:
        """``|lambda|`` of every state channel (each below 1 by construction)."""
        re, im = self._lambda()
        return jnp.sqrt(re**2 + im**2)


class StateSpace(AbstractBackbone):
    """A stack of diagonal linear recurrent layers (LRU) and a final LayerNorm.

    Training runs each layer's recurrence as one associative scan over the sequence (no
    sequential loop, no attention over all pairs); imagination steps it with a state of
    ``layers x state_width`` complex numbers, whatever the horizon.
    """

    layers: tuple[_DiagonalLayer, ...]
    ln_f: eqx.nn.LayerNorm
    width: int = eqx.field(static=True)

    def __init__(
        self, width: int = 48, layers: int = 2, state_width: int = 96, *, key: PRNGKeyArray
    ):
        self.layers = tuple(
            _DiagonalLayer(width, state_width, key=k) for k in jax.random.split(key, layers)
        )
        self.ln_f = eqx.nn.LayerNorm(width)
        self.width = width

    def __call__(
        self, tokens: Float[Array, "T width"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, "T width"]:
        x = tokens
        for layer in self.layers:  # a handful of layers, not a loop over time
            x = layer(x)
        return layer_norm(self.ln_f, x)

    def init_cache(self, max_len: int, dtype: Any) -> Cache:
        return tuple(
            (jnp.zeros(layer.nu_log.shape, dtype), jnp.zeros(layer.nu_log.shape, dtype))
            for layer in self.layers
        )

    def step(
        self, cache: Cache, token: Float[Array, " width"], position: Int[Array, ""]
    ) -> tuple[Cache, Float[Array, " width"]]:
        x, new_cache = token, []
        for layer, h in zip(self.layers, cache):
            h, x = layer.step(h, x)
            new_cache.append(h)
        return tuple(new_cache), layer_norm(self.ln_f, x)


BackboneKind = Literal["transformer", "lstm", "gru", "rnn", "ssm"]
#: the class of every backbone kind
BACKBONE_CLASSES: dict[str, type[AbstractBackbone]] = {
    "transformer": Transformer,
    "lstm": Recurrent,
    "gru": Recurrent,
    "rnn": Recurrent,
    "ssm": StateSpace,
}


def make_backbone(
    kind: BackboneKind,
    width: int,
    layers: int = 2,
    heads: int = 3,
    mlp_width: int = 192,
    dropout: float = 0.0,
    state_width: int = 96,
    *,
    key: PRNGKeyArray,
) -> AbstractBackbone:
    """A backbone by kind; ``heads``, ``mlp_width`` and ``dropout`` are the transformer's,
    ``state_width`` the state-space model's, ``layers`` both's (recurrent backbones are one
    cell of ``width``)."""
    cls = BACKBONE_CLASSES[kind]
    if cls is Transformer:
        return Transformer(width, layers, heads, mlp_width, dropout, key=key)
    if cls is StateSpace:
        return StateSpace(width, layers, state_width, key=key)
    return Recurrent(kind, width, key=key)


__all__ = [
    "BACKBONE_CLASSES",
    "AbstractBackbone",
    "BackboneKind",
    "Recurrent",
    "StateSpace",
    "Transformer",
    "make_backbone",
]
