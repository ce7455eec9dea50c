"""Contract functions (`jaxret.methods.Method`) of a method whose model is one Flax module: its
state is the model's batch statistics, and evaluation reads named outputs of the model in eval mode.

    make_model = lambda config: Model(...)
    init_state = flax_model.init_state(make_model)
    embed_fn = flax_model.eval_output(make_model, "embedding")
"""
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

ModelFactory = Callable[[ml_collections.ConfigDict], nn.Module]


def variables(params, method_state) -> dict:
  """The model's variables: the parameters and, when the state has them, the batch statistics (the
  rest of a method's state, as EMA encoders or database codes, is not the model's)."""
  return {"params": params, **({"batch_stats": method_state["batch_stats"]} if "batch_stats" in method_state else {})}


def init_state(make_model: ModelFactory) -> Callable:
  """`init_state(rng, config, sample_batch) -> (params, {"batch_stats"})` of the model, initialised
  on `sample_batch["image"]` in eval mode."""
  def init(rng: jax.Array, config: ml_collections.ConfigDict, sample_batch: dict):
    initial = make_model(config).init(rng, sample_batch["image"], train=False)
    return initial["params"], {"batch_stats": initial["batch_stats"]}
  return init


def eval_output(make_model: ModelFactory, name: str) -> Callable:
  """`(params, method_state, images [B, H, W, 3], config) -> outputs[name]`: the model in eval mode
  (`embed_fn` with "embedding", `classify_fn` with "logits")."""
  def output(params, method_state, images: jax.Array, config: ml_collections.ConfigDict) -> jax.Array:
    return make_model(config).apply(variables(params, method_state), images, train=False)[name]
  output.__doc__ = f"images `[B, H, W, 3]` -> the model's {name!r} output (eval mode)."
  return output


def predicted_attributes(make_model: ModelFactory) -> Callable:
  """`attribute_fn`: `(params, method_state, images, config) -> int32 [B, K]`, the arg-max value of
  each attribute of the model's "attribute_logits" `[B, K, V]` (eval mode)."""
  logits = eval_output(make_model, "attribute_logits")

  def attribute_fn(params, method_state, images: jax.Array, config: ml_collections.ConfigDict) -> jax.Array:
    return jnp.argmax(logits(params, method_state, images, config), axis=-1).astype(jnp.int32)
  return attribute_fn
