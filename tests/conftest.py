"""Test-wide JAX settings: fail loudly on silent promotion/broadcasting, fake two CPU devices.

The device count must be set before JAX initialises its backends, hence at import time here.
jaxtyping shape checks are switched on for the ``awmctl`` package through pytest's
``--jaxtyping-packages`` option (see ``pyproject.toml``).
"""

import os

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Keep test runs hermetic: no persistent compilation cache written by CLI invocations.
os.environ["AWMCTL_COMPILATION_CACHE"] = "off"
