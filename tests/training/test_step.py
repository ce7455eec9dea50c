"""The compiled training step's guard: a NaN/Inf in the loss or in any gradient leaf freezes the state."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxret import mesh as mesh_lib, methods
from jaxret.training import step as step_lib
from jaxret.training.state import TrainState


def sqrt_method():
  """loss = w . x + sqrt(v): finite at v = 0, but d loss / d v = +inf there."""
  def loss_fn(params, method_state, batch, rng, config):
    del rng, config
    loss = jnp.sum(params["w"] * batch["x"]) + jnp.sqrt(params["nested"]["v"])
    return loss, ({}, method_state)
  return methods.Method("sqrt", loss_fn=loss_fn)


def run_one_step(v: float) -> TrainState:
  config = ml_collections.ConfigDict({"seed": 0})
  tx = optax.sgd(0.1)
  params = {"w": jnp.ones(3), "nested": {"v": jnp.float32(v)}}
  state = TrainState(step=jnp.int32(4), params=params, method_state={}, opt_state=tx.init(params),
                     nonfinite_step=jnp.int32(-1))
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  train_step = step_lib.compile_train_step(sqrt_method(), config, tx, optax.constant_schedule(0.1), mesh)
  new_state, metrics = train_step(state, {"x": jnp.arange(3, dtype=jnp.float32)})
  assert np.isfinite(metrics["loss"])
  return new_state


def test_a_finite_step_updates_the_parameters():
  state = run_one_step(4.0)
  assert int(state.step) == 5 and int(state.nonfinite_step) == -1
  np.testing.assert_allclose(state.params["w"], 1 - 0.1 * np.arange(3), rtol=1e-6)
  np.testing.assert_allclose(state.params["nested"]["v"], 4 - 0.1 * 0.25, rtol=1e-6)


def test_an_infinite_gradient_in_one_leaf_freezes_the_state_and_records_the_step():
  state = run_one_step(0.0)  # the loss is finite; only d loss / d v is not
  assert int(state.nonfinite_step) == 4 and int(state.step) == 4
  np.testing.assert_array_equal(state.params["w"], np.ones(3))
  assert float(state.params["nested"]["v"]) == 0.0
