"""The JAX settings every test runs under: fail loudly on silent promotion or broadcasting, and two
fake CPU devices (so that sharding over devices runs on any machine).

Imported by ``conftest.py`` and by the goldens' own process (``run_commands.py``), whose outputs
were recorded under them. The device count must be set before JAX initialises its backends,
hence at import time.
"""

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
