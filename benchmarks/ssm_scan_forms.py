"""Two ways to run the state-space AWM's recurrence over a sequence, timed against each other.

Run: .venv/bin/python benchmarks/ssm_scan_forms.py [--chunks 128,32,16] [--repeats 20]
     [--out benchmarks/results/ssm_scan_forms.jsonl]

The recurrence ``h_t = lambda h_{t-1} + b_t`` (complex, diagonal, ``lambda`` fixed in time) over
the shape a model update gives one layer (64 episodes, 101 tokens, 96 state channels), forward
and backward (the gradient of a scalar of ``h`` with respect to ``lambda``'s parameters and to
``b``), as one compiled call; the median of ``--repeats`` calls, after one to compile:
- ``associative``: awmctl's (:func:`awmctl.ssm.diagonal_scan`: an associative scan over the time
  steps, with its hand-written backward pass);
- ``convolution-C``: the same recurrence as the causal convolution it is (``lambda`` does not
  depend on the input, so ``h_t = sum_k lambda^(t-k) b_k``): within chunks of C steps a matrix
  product with the kernel ``lambda^j`` (built by tiling and reshaping, never by indexing, whose
  gradient would scatter), the states carried between chunks by an associative scan over the
  chunks, autodiff for the backward pass. It trades the scan's O(log T) levels of small
  element-wise operations for O(T C) multiply-adds per channel in matrix products.
Each row also states the largest difference from the associative form, relative to the largest
gradient. One JSON line per form is appended to --out, tagged with the machine; a form already
there for this machine is skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from online_speed import machine

from awmctl import ssm

BATCH, STEPS, STATE = 64, 101, 96


def _toeplitz(p: jax.Array) -> jax.Array:
    """``K[t, k] = p[t - k]`` for ``t >= k``, else 0: with ``c`` = (n - 1 zeros, then ``p``), the
    column-reversed ``K`` is the Hankel matrix ``c[t + j]``, ``c`` tiled n times and read with a
    row pitch of ``2n = len(c) + 1``."""
    n = p.shape[0]
    c = jnp.concatenate([jnp.zeros((n - 1, *p.shape[1:]), p.dtype), p])
    tiled = jnp.pad(jnp.tile(c, (n, 1)), ((0, n), (0, 0)))
    return jnp.flip(tiled.reshape(n, 2 * n, -1)[:, :n], axis=1)


def _powers(decay, phase, exponents):
    j = exponents[:, None]
    modulus = jnp.exp(-j * decay)
    return modulus * jnp.cos(j * phase), modulus * jnp.sin(j * phase)


def convolution(decay, phase, inputs, chunk: int):
    """The recurrence as a chunked causal convolution (see the module's docstring)."""
    steps, state = inputs[0].shape
    size = min(steps, chunk)
    chunks = -(-steps // size)
    pad = ((0, chunks * size - steps), (0, 0))
    b = tuple(jnp.pad(x, pad).reshape(chunks, size, state) for x in inputs)
    kernel = tuple(map(_toeplitz, _powers(decay, phase, jnp.arange(size, dtype=b[0].dtype))))
    conv = lambda k, x: jnp.einsum("tks,nks->nts", k, x)
    re = conv(kernel[0], b[0]) - conv(kernel[1], b[1])
    im = conv(kernel[0], b[1]) + conv(kernel[1], b[0])
    if chunks > 1:
        # the state each chunk ends in, H_n = lambda^size H_{n-1} + local_n(last), carried into
        # every step i of the next chunk as lambda^(i+1) H_{n-1}
        jump = _powers(decay, phase, jnp.full((1,), size, b[0].dtype))
        ends = ssm.diagonal_scan((jump[0][0], jump[1][0]), (re[:, -1], im[:, -1]))
        before = tuple(jnp.concatenate([jnp.zeros_like(e[:1]), e[:-1]]) for e in ends)
        reach = _powers(decay, phase, jnp.arange(1, size + 1, dtype=b[0].dtype))
        lift = lambda x: (x[0][None], x[1][None])
        drop = lambda x: (x[0][:, None], x[1][:, None])
        carried = ssm.complex_product(lift(reach), drop(before))
        re, im = re + carried[0], im + carried[1]
    return tuple(x.reshape(chunks * size, state)[:steps] for x in (re, im))


def associative(decay, phase, inputs):
    lam = (jnp.exp(-decay) * jnp.cos(phase), jnp.exp(-decay) * jnp.sin(phase))
    return ssm.diagonal_scan(lam, inputs)


def loss_of(form):
    def loss(nu_log, theta_log, b_re, b_im):
        decay, phase = jnp.exp(nu_log) + ssm.MIN_DECAY, jnp.exp(theta_log)
        h = jax.vmap(lambda r, i: form(decay, phase, (r, i)))(b_re, b_im)
        return jnp.sum(jnp.sin(h[0])) + jnp.sum(jnp.cos(h[1]))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", default="128,32,16")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/ssm_scan_forms.jsonl")
    args = parser.parse_args()
    out, here = Path(args.out), machine()
    done = set()
    if out.exists():
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        done = {r["form"] for r in rows if r["machine"] == here}
    k = jax.random.split(jax.random.key(0), 4)
    modulus = jax.random.uniform(k[0], (STATE,), minval=0.9, maxval=0.999)
    args_in = (
        jnp.log(-jnp.log(modulus)),
        jnp.log(jnp.pi * jax.random.uniform(k[1], (STATE,), minval=1e-3)),
        jax.random.normal(k[2], (BATCH, STEPS, STATE)),
        jax.random.normal(k[3], (BATCH, STEPS, STATE)),
    )
    forms = {"associative": associative}
    for c in map(int, args.chunks.split(",")):
        forms[f"convolution-{c}"] = lambda d, p, x, c=c: convolution(d, p, x, c)
    reference = loss_of(associative)(*args_in)[1]
    for name, form in forms.items():
        if name in done:
            continue
        step = loss_of(form)
        _, grads = jax.block_until_ready(step(*args_in))
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(step(*args_in))
            times.append(time.perf_counter() - start)
        difference = max(
            float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
            for a, b in zip(reference, grads, strict=True)
        )
        row = {
            "form": name,
            "shape": [BATCH, STEPS, STATE],
            "ms": round(1e3 * statistics.median(times), 1),
            "min_ms": round(1e3 * min(times), 1),
            "gradient_difference": difference,
            "machine": here,
        }
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:16s} {row['ms']:7.1f} ms (min {row['min_ms']}), gradients {difference:.1e}")


if __name__ == "__main__":
    main()
