import jax
import numpy as np
import optax
from flax import traverse_util

from jaxret import weights
from jaxret.methods import baseline
from jaxret.train import mesh as mesh_lib
from jaxret.train import state as state_lib
from tests.train.conftest import tiny_config


def test_init_weights_fill_the_backbone_and_leave_the_heads(tmp_path):
  config = tiny_config(num_classes=5)
  batch = {"image": np.zeros((8, 32, 32, 3), np.float32), "label": np.zeros((8,), np.int32)}
  state = state_lib.create(baseline, config, optax.sgd(0.1), batch, mesh_lib.make_mesh())

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
