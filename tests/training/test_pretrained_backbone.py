import json
import os

import jax
import numpy as np
import optax
from flax import traverse_util

from jaxret import weights
from jaxret.methods import baseline
from jaxret.training import loop
from jaxret import mesh as mesh_lib
from jaxret.training import state as state_lib
from tests.training.conftest import tiny_config


def test_init_weights_fill_the_backbone_and_leave_the_heads(tmp_path):
  config = tiny_config(num_classes=5)
  batch = {"image": np.zeros((8, 32, 32, 3), np.float32), "label": np.zeros((8,), np.int32)}
  state = state_lib.create(baseline.METHOD, config, optax.sgd(0.1), batch, mesh_lib.make_mesh())

  # A converted weight file (launch.convert_weights layout) for this tiny backbone, other values.
  other = jax.tree.map(lambda x: np.asarray(x) + 1.5, {"params": state.params["backbone"],
                                                        "batch_stats": state.method_state["batch_stats"]["backbone"]})
  path = tmp_path / "tiny_resnet18.npz"
  np.savez(path, **traverse_util.flatten_dict(other, sep="/"), **{weights.FLAX_ARCH_KEY: np.array("resnet18")})
  config.init_weights = str(path)
  loaded = state_lib.with_pretrained_backbone(state, config)

  jax.tree.map(np.testing.assert_array_equal, loaded.params["backbone"], other["params"])
  jax.tree.map(np.testing.assert_array_equal, loaded.method_state["batch_stats"]["backbone"], other["batch_stats"])
  for head in ("embedding", "classifier"):
    jax.tree.map(np.testing.assert_array_equal, loaded.params[head], state.params[head])
  assert jax.tree.leaves(loaded.params)[0].sharding == jax.tree.leaves(state.params)[0].sharding


def _val_rows_and_test(workdir):
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  return [r for r in rows if r["split"] == "val"], [r for r in rows if r["split"] == "test"][-1]


def test_the_pretrained_starting_point_is_a_candidate_for_the_best_model(tmp_path):
  """With init_weights, validation scores step 0 before training and selection may keep it; a
  run from scratch has no step-0 evaluation."""
  config = tiny_config(num_classes=5)
  batch = {"image": np.zeros((8, 32, 32, 3), np.float32), "label": np.zeros((8,), np.int32)}
  state = state_lib.create(baseline.METHOD, config, optax.sgd(0.1), batch, mesh_lib.make_mesh())
  path = tmp_path / "tiny_resnet18.npz"
  variables = {"params": state.params["backbone"], "batch_stats": state.method_state["batch_stats"]["backbone"]}
  np.savez(path, **traverse_util.flatten_dict(jax.tree.map(np.asarray, variables), sep="/"),
           **{weights.FLAX_ARCH_KEY: np.array("resnet18")})

  pretrained_run = tiny_config(init_weights=str(path), eval_every=3)
  loop.train(pretrained_run, str(tmp_path / "pretrained"))
  val, test = _val_rows_and_test(tmp_path / "pretrained")
  assert [r["step"] for r in val] == [0, 3, 6]
  best = max(r["recall@1"] for r in val)
  assert test["checkpoint_step"] in [r["step"] for r in val if r["recall@1"] == best]

  loop.train(tiny_config(eval_every=3), str(tmp_path / "scratch"))
  assert [r["step"] for r in _val_rows_and_test(tmp_path / "scratch")[0]] == [3, 6]
