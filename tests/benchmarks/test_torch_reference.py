"""benchmarks/torch_reference: each PyTorch method has jaxret's trainable parameters (count and
shapes), a finite training loss whose gradient reaches every parameter, and ops that compute
jaxret's numbers."""
import importlib
import os
import sys

import jax
import numpy as np
import pytest
import torch
from torch import nn

from jaxret import methods
from jaxret.data import synthetic

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import torch_reference  # pylint: disable=wrong-import-position

BATCH = 8
NUM_CLASSES = 5
NUM_TRAIN_EXAMPLES = 40
SYNTHETIC_ATTRIBUTE_SIZES = tuple(len(values) for values in synthetic.ATTRIBUTE_VALUES)
# test case -> (method, image size, config values on top of the tiny size). DeML runs at 64 px so
# that its random walk has more than one node on res5; A3M's attention BatchNorms have one
# feature per res5 region (4 at 64 px).
CASES = {
    "baseline": ("baseline", 32, {}),
    "a3m": ("a3m", 32, {}),
    "a3m_batchnorm": ("a3m", 64, {"a3m.branch": "batchnorm_relu", "a3m.attention_norm": "batchnorm"}),
    "midattr": ("midattr", 64, {}),
    "midattr_res4": ("midattr", 32, {"midattr.attribute_layer": "res4", "midattr.part_init": "random"}),
    "a2net": ("a2net", 64, {}),
    "a2net_vanilla": ("a2net", 32, {"a2net.variant": "vanilla", "a2net.similarity": "paper", "a2net.gamma": 0.0}),
    "vapnet": ("vapnet", 32, {}),
    "vapnet_embedding_eq5": ("vapnet", 32, {"embedding_dim": 16, "vapnet.variant": "no_mean_encoders"}),
    "deml": ("deml", 64, {}),
    "deml_hinge": ("deml", 32, {"deml.adversary": "hinge", "deml.num_branches": 3, "deml.split": "res2",
                                "deml.attention_layers": ("res3", "res5")}),
}


def tiny_config(method: str, image_size: int = 32, **overrides):
  """configs/<method>.py (synthetic) at backbone_width 0.0625, with the dataset keys the train loop
  fills; `overrides` by "section.key" name."""
  config = importlib.import_module(f"configs.{method}").get_config()
  values = {"backbone_width": 0.0625, "image_size": image_size, "batch_size": BATCH, "num_classes": NUM_CLASSES,
            "attribute_sizes": SYNTHETIC_ATTRIBUTE_SIZES, "num_train_examples": NUM_TRAIN_EXAMPLES, **overrides}
  for key, value in values.items():
    *sections, leaf = key.split(".")
    target = config
    for section in sections:
      target = target[section]
    target[leaf] = value
  return config


def numpy_batch(config, seed: int = 0) -> dict[str, np.ndarray]:
  """A jaxret-style batch: images, P x K labels (pairs), attributes with some unknown (-1), indices."""
  rng = np.random.default_rng(seed)
  size = config.image_size
  attributes = np.stack([rng.integers(0, n, BATCH) for n in SYNTHETIC_ATTRIBUTE_SIZES], axis=1)
  attributes[rng.random(attributes.shape) < 0.2] = -1
  return {"image": rng.normal(size=(BATCH, size, size, 3)).astype(np.float32),
          "label": (np.arange(BATCH) // 2 % NUM_CLASSES).astype(np.int32),
          "attributes": attributes.astype(np.int32),
          "index": rng.permutation(NUM_TRAIN_EXAMPLES)[:BATCH].astype(np.int32)}


def jax_parameter_shapes(config, batch) -> list[tuple[int, ...]]:
  """Shapes of jaxret's trainable parameters, from `jax.eval_shape` of `init_state` (nothing compiled)."""
  method = methods.get_method(config.method)
  params, _ = jax.eval_shape(lambda: method.init_state(jax.random.key(0), config, batch))
  return sorted(tuple(leaf.shape) for leaf in jax.tree.leaves(params))


def torch_parameter_shapes(model: nn.Module) -> list[tuple[int, ...]]:
  """Shapes of the model's trainable parameters in Flax's layout (conv OIHW -> HWIO, linear [out, in] -> [in, out])."""
  shapes = []
  for module in model.modules():
    for name, p in module.named_parameters(recurse=False):
      shape = tuple(p.shape)
      if isinstance(module, nn.Conv2d) and name == "weight":
        shape = (shape[2], shape[3], shape[1], shape[0])
      elif isinstance(module, nn.Linear) and name == "weight":
        shape = shape[::-1]
      shapes.append(shape)
  return sorted(shapes)


@pytest.mark.parametrize("case", list(CASES))
def test_parameters_loss_and_gradients_match_jaxret(case):
  method, image_size, overrides = CASES[case]
  config = tiny_config(method, image_size, **overrides)
  batch = numpy_batch(config)
  torch.manual_seed(0)
  model = torch_reference.build(config)
  expected = jax_parameter_shapes(config, batch)
  actual = torch_parameter_shapes(model)
  assert sum(int(np.prod(s)) for s in actual) == sum(int(np.prod(s)) for s in expected)
  assert actual == expected
  loss = model.loss(torch_reference.to_torch(batch))
  assert loss.ndim == 0 and torch.isfinite(loss)
  loss.backward()
  missing = [name for name, p in model.named_parameters() if p.grad is None]
  assert not missing, f"no gradient reaches {missing}"
  model.after_step()


def test_to_torch_gives_channels_last_images_and_int64_labels():
  batch = numpy_batch(tiny_config("baseline"))
  out = torch_reference.to_torch(batch)
  assert out["image"].shape == (BATCH, 3, 32, 32)
  assert out["image"].is_contiguous(memory_format=torch.channels_last)
  np.testing.assert_array_equal(out["image"].permute(0, 2, 3, 1).numpy(), batch["image"])
  assert out["label"].dtype == torch.int64 and out["attributes"].dtype == torch.int64
  np.testing.assert_array_equal(out["attributes"].numpy(), batch["attributes"])
  with pytest.raises(ValueError, match=r"batch\['image'\] has shape \(8, 3, 32, 32\)"):
    torch_reference.to_torch({"image": np.zeros((8, 3, 32, 32), np.float32)})


def test_build_names_an_unknown_method():
  config = tiny_config("baseline")
  config.method = "nope"
  with pytest.raises(ValueError, match="config.method='nope'"):
    torch_reference.build(config)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_trunk_has_torchvision_names_and_computes_jaxret_stage_features(arch):
  from jaxret.backbones import get_backbone  # pylint: disable=import-outside-toplevel
  from jaxret.weights.torchvision_names import torchvision_to_flax  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  trunk = torch_reference.resnet.resnet(arch, 0.0625).eval()
  with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode uses them
    for m in trunk.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5), m.bias.normal_(0.0, 0.1)
        m.running_mean.normal_(0.0, 0.1), m.running_var.uniform_(0.5, 1.5)
  images = np.random.default_rng(0).normal(size=(2, 33, 33, 3)).astype(np.float32)  # odd: floor formulas
  backbone = get_backbone(arch, width_multiplier=0.0625)
  target = jax.eval_shape(lambda: backbone.init(jax.random.key(0), images, train=False))
  state_dict = {k: v.numpy() for k, v in trunk.state_dict().items()}
  variables = torchvision_to_flax(state_dict, target, "torch_reference.resnet")  # raises on any name/shape mismatch
  expected = jax.jit(lambda v, x: backbone.apply(v, x, train=False))(variables, images)
  with torch.no_grad():
    actual = trunk(torch_reference.to_torch({"image": images})["image"])
  assert sorted(actual) == sorted(expected) == ["res2", "res3", "res4", "res5"]
  for stage in actual:
    assert actual[stage].shape[2] == torch_reference.resnet.stage_size(33, stage)
    np.testing.assert_allclose(actual[stage].permute(0, 2, 3, 1).numpy(), expected[stage], rtol=1e-4, atol=1e-4)
