"""Tiny untrained models for the visualisation tests, without compiling their `init_state`."""
import jax
import jax.numpy as jnp
import numpy as np


def random_init(method, config, size: int, seed: int = 0):
  """(params, method_state) of `method` for `config` at `size` px: the shapes of `init_state` (traced,
  not compiled: compiling a ResNet's initialiser costs as much as its forward pass) filled with
  random values: kernels N(0, 1 / fan-in), BatchNorm scales and running variances 1, everything
  else 0 (biases, running means, state)."""
  abstract = jax.eval_shape(lambda: method.init_state(jax.random.key(0, impl="rbg"), config,
                                                      {"image": jnp.zeros((1, size, size, 3))}))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = str(path[-1].key) if hasattr(path[-1], "key") else ""
    if name in ("scale", "var"):
      return np.ones(leaf.shape, leaf.dtype)
    if leaf.ndim >= 2 and np.issubdtype(leaf.dtype, np.floating):
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(leaf.dtype)
    return np.zeros(leaf.shape, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, abstract)
