"""A method defined outside jaxret (here, in this test file) is registered and then trains,
resumes and evaluates through `jaxret.train` like a built-in one: the contract is the `Method`."""
import flax.linen as nn
import jax.numpy as jnp
import optax
import pytest

import jaxret
from jaxret import methods
from tests.training.conftest import read_metrics, tiny_config


class MeanColour(nn.Module):
  """The image's mean colour through one dense layer: an 8-d embedding, and class logits."""
  num_classes: int

  @nn.compact
  def __call__(self, images, *, train):
    del train
    embedding = nn.Dense(8)(jnp.mean(images, axis=(1, 2)))
    return {"embedding": embedding, "logits": nn.Dense(self.num_classes)(embedding)}


def init_state(rng, config, sample_batch):
  params = MeanColour(config.num_classes).init(rng, sample_batch["image"], train=False)["params"]
  return params, {"batch_stats": {}}


def loss_fn(params, method_state, batch, rng, config):
  del rng
  logits = MeanColour(config.num_classes).apply({"params": params}, batch["image"], train=False)["logits"]
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
  return loss, ({"cross_entropy": loss}, method_state)


def embed_fn(params, method_state, images, config):
  del method_state
  return MeanColour(config.num_classes).apply({"params": params}, images, train=False)["embedding"]


MEAN_COLOUR = methods.register(methods.Method("mean_colour", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn))


def test_a_registered_method_trains_and_evaluates_through_jaxret_train(tmp_path):
  assert methods.get_method("mean_colour") is MEAN_COLOUR
  workdir = str(tmp_path)
  config = tiny_config(method="mean_colour", eval_every=2, init_weights="none")
  results = jaxret.train(config, workdir)
  losses = [m["loss"] for m in read_metrics(workdir)]
  assert len(losses) == 6 and losses[-1] != losses[0] and all(jnp.isfinite(jnp.asarray(losses)))
  assert set(read_metrics(workdir, "train")[0]) >= {"cross_entropy", "loss", "learning_rate"}
  run = jaxret.restore(workdir)
  assert run.method is MEAN_COLOUR
  assert jaxret.evaluate(run) == pytest.approx({k: v for k, v in results.items() if k != "checkpoint_step"})


def test_a_method_missing_a_required_function_is_refused_by_name():
  with pytest.raises(ValueError, match=r"'half': \['loss_fn'\] missing"):
    methods.register(methods.Method("half", init_state=init_state, embed_fn=embed_fn))
  with pytest.raises(ValueError, match="config.method='nowhere': no module jaxret/methods/nowhere.py"):
    methods.get_method("nowhere")
