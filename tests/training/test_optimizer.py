import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxret.training import config as config_lib
from jaxret.training import optimizer


def _config(**opt):
  config = config_lib.base_config()
  config.total_steps = 100
  config.optimizer.update(opt)
  return config


def test_cosine_with_warmup():
  schedule = optimizer.learning_rate_schedule(_config(learning_rate=0.1, warmup_steps=10).optimizer, 100)
  np.testing.assert_allclose(schedule(0), 0.0)
  np.testing.assert_allclose(schedule(5), 0.05, rtol=1e-6)
  np.testing.assert_allclose(schedule(10), 0.1, rtol=1e-6)
  np.testing.assert_allclose(schedule(55), 0.1 * 0.5 * (1 + np.cos(np.pi * 45 / 90)), rtol=1e-5)
  np.testing.assert_allclose(schedule(100), 0.0, atol=1e-7)


def test_step_boundaries_are_absolute_steps():
  opt = _config(learning_rate=1e-3, schedule="step", decay_boundaries=(50,), decay_factor=0.1, warmup_steps=5).optimizer
  schedule = optimizer.learning_rate_schedule(opt, 60)
  np.testing.assert_allclose(schedule(49), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(schedule(50), 1e-4, rtol=1e-6)


def test_exponential_staircase():
  opt = _config(learning_rate=1e-5, schedule="exponential", decay_every=5, decay_factor=0.9).optimizer
  schedule = optimizer.learning_rate_schedule(opt, 100)
  np.testing.assert_allclose(schedule(4), 1e-5, rtol=1e-6)
  np.testing.assert_allclose(schedule(12), 1e-5 * 0.81, rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_lr_multiplier_scales_the_update_of_matching_parameters(name):
  params = {"backbone": {"w": jnp.ones(3)}, "learners": {"w": jnp.ones(3)}}
  grads = {"backbone": {"w": jnp.array([1.0, -2.0, 0.5])}, "learners": {"w": jnp.array([1.0, -2.0, 0.5])}}
  config = _config(name=name, learning_rate=0.01, schedule="constant", weight_decay=1e-2, momentum=0.0,
                   lr_multipliers=(("^learners/", 10.0),))
  tx, _ = optimizer.make_optimizer(config)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["learners"]["w"], 10 * updates["backbone"]["w"], rtol=1e-6)
  assert np.all(np.abs(updates["backbone"]["w"]) > 0)


def test_sgd_matches_pytorch_update_rule():
  """PyTorch SGD: g += wd * p; buf = m * buf + g; p -= lr * buf."""
  config = _config(name="sgd", learning_rate=0.1, schedule="constant", weight_decay=0.01, momentum=0.9)
  tx, _ = optimizer.make_optimizer(config)
  p = jnp.array([1.0, -1.0])
  state = tx.init(p)
  buf = np.zeros(2)
  p_ref = np.array([1.0, -1.0])
  for g in (np.array([0.5, 0.2]), np.array([-0.3, 0.1])):
    updates, state = tx.update(jnp.asarray(g), state, p)
    p = optax.apply_updates(p, updates)
    buf = 0.9 * buf + (g + 0.01 * p_ref)
    p_ref = p_ref - 0.1 * buf
  np.testing.assert_allclose(p, p_ref, rtol=1e-6)


def test_pattern_matching_no_parameter_is_an_error():
  tx, _ = optimizer.make_optimizer(_config(lr_multipliers=(("^learnerz/", 10.0),)))
  with pytest.raises(ValueError, match="learnerz"):
    tx.init({"learners": {"w": jnp.ones(2)}})


def test_unknown_optimizer_and_schedule_are_named():
  with pytest.raises(ValueError, match="'sgdd'"):
    optimizer.make_optimizer(_config(name="sgdd"))
  with pytest.raises(ValueError, match="'cosin'"):
    optimizer.make_optimizer(_config(schedule="cosin"))
