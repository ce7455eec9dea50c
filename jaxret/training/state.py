"""The train state: everything a resumed run needs, as one pytree."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from jaxret import weights
from jaxret.weights import pretrained
from jaxret import mesh as mesh_lib


@flax.struct.dataclass
class TrainState:
  """`method_state` holds what a method keeps besides parameters (batch statistics, EMA
  encoders, hash database codes); `nonfinite_step` is -1 until a loss or gradient is NaN/Inf,
  then the step at which it happened (the state is frozen from there on)."""
  step: jax.Array
  params: Any
  method_state: Any
  opt_state: Any
  nonfinite_step: jax.Array


def create(method, config: ml_collections.ConfigDict, tx: optax.GradientTransformation,
           sample_batch: dict, mesh: Mesh) -> TrainState:
  """Initialises parameters and method state from `config.seed`, replicated on `mesh`.

  `sample_batch` (`jaxret.data.pipeline.sample_batch`) holds host arrays with the shapes of a
  training example; the method's `init_state` infers its variables from them.
  """

  def init():
    # XLA:CPU compiles one threefry kernel per parameter shape (about 1-2 s each, 16 s for a
    # small ResNet); the "rbg" generator compiles in a fraction of that. Outputs are replicated,
    # so every device computes the same values.
    rng = jax.random.key(config.seed, impl="rbg")
    params, method_state = method.init_state(rng, config, sample_batch)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, method_state=method_state,
                      opt_state=tx.init(params), nonfinite_step=jnp.full((), -1, jnp.int32))

  return jax.jit(init, out_shardings=mesh_lib.replicated(mesh))()


def with_pretrained_backbone(state: TrainState, config: ml_collections.ConfigDict, method=None) -> TrainState:
  """`state` with the module named "backbone" (its parameters and batch statistics) read from the
  file `config.init_weights` names ("imagenet": the backbone's ImageNet file, or a torchvision
  `.pth` / `.safetensors` or `launch.convert_weights` file; not "none"), then passed through
  `method.after_pretrained_backbone` when the method has one."""
  params, batch_stats = weights.load_backbone_variables(
      pretrained.init_weights_path(config), config.backbone, state.params, state.method_state["batch_stats"])
  method_state = {**state.method_state, "batch_stats": batch_stats}
  hook = method.after_pretrained_backbone if method is not None else None
  if hook is not None:  # compiled: every output leaf is a buffer of its own (the train step donates them)
    params, method_state = jax.jit(lambda p, s: hook(p, s, config))(params, method_state)
  return state.replace(params=params, method_state=method_state)
