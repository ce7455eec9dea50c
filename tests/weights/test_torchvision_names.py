"""Tests for jaxret/weights/torchvision_names.py and mismatch.py: names, layouts, clear errors."""
import jax
import numpy as np
import pytest
from flax import traverse_util

from jaxret.backbones import get_backbone
from jaxret.weights import WeightMismatchError, abstract_variables, torchvision_to_flax
from jaxret.weights.torchvision_names import flax_layout, torch_key, torch_shape

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2"]


def _expected_torch_shapes(arch: str) -> dict[str, tuple[int, ...]]:
  """torchvision key -> torch shape for every variable of jaxret's `arch` with its classifier."""
  flat = traverse_util.flatten_dict(abstract_variables(get_backbone(arch, num_classes=1000)))
  return {torch_key(path): torch_shape(path, leaf.shape) for path, leaf in flat.items()}


def test_torch_key_examples():
  assert torch_key(("params", "conv1", "kernel")) == "conv1.weight"
  assert torch_key(("batch_stats", "bn1", "var")) == "bn1.running_var"
  assert torch_key(("params", "layer3_5", "downsample_bn", "scale")) == "layer3.5.downsample.1.weight"
  assert torch_key(("params", "layer1_0", "downsample_conv", "kernel")) == "layer1.0.downsample.0.weight"
  assert torch_key(("batch_stats", "features_2", "conv_1_1", "mean")) == "features.2.conv.1.1.running_mean"
  assert torch_key(("params", "features_0", "0", "kernel")) == "features.0.0.weight"
  assert torch_key(("params", "classifier_1", "bias")) == "classifier.1.bias"
  with pytest.raises(ValueError, match=r"variable params/head/embedding: no torchvision counterpart"):
    torch_key(("params", "head", "embedding"))


def test_layouts():
  conv = np.arange(2 * 3 * 5 * 7).reshape(2, 3, 5, 7)  # torch [out, in, kh, kw]
  hwio = flax_layout(("params", "conv1", "kernel"), conv)
  assert hwio.shape == (5, 7, 3, 2) and hwio[4, 6, 2, 1] == conv[1, 2, 4, 6]
  assert torch_shape(("params", "conv1", "kernel"), hwio.shape) == conv.shape
  depthwise = np.arange(8 * 9).reshape(8, 1, 3, 3)
  assert flax_layout(("params", "conv_1_0", "kernel"), depthwise).shape == (3, 3, 1, 8)
  linear = np.arange(6).reshape(2, 3)  # torch [out, in]
  np.testing.assert_array_equal(flax_layout(("params", "fc", "kernel"), linear), linear.T)
  bias = np.arange(4)
  assert flax_layout(("params", "fc", "bias"), bias) is bias


def test_every_torchvision_key_has_one_variable():
  import torch  # test dependency
  import torchvision_reference

  for arch in ARCHS:
    with torch.device("meta"):  # shapes only, no memory, no init
      state = torchvision_reference.build(arch).state_dict()
    want = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert _expected_torch_shapes(arch) == want, arch


def _resnet18_state_dict() -> dict[str, np.ndarray]:
  """Random arrays under every torchvision ResNet-18 key, torch layouts."""
  rng = np.random.default_rng(0)
  return {k: rng.standard_normal(shape).astype(np.float32)
          for k, shape in _expected_torch_shapes("resnet18").items()}


def test_maps_a_state_dict_onto_the_variables():
  state = _resnet18_state_dict()
  target = abstract_variables(get_backbone("resnet18", num_classes=1000))
  wrapped = {f"module.{k}": v for k, v in state.items()} | {"module.bn1.num_batches_tracked": np.int64(3)}
  variables = torchvision_to_flax(wrapped, target, "test.pth")  # DataParallel prefix stripped
  assert jax.tree.map(lambda v: (v.shape, v.dtype), variables) == jax.tree.map(
      lambda v: (v.shape, v.dtype), target)
  np.testing.assert_array_equal(variables["params"]["layer2_0"]["downsample_conv"]["kernel"],
                                state["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], state["fc.weight"].T)
  np.testing.assert_array_equal(variables["batch_stats"]["layer4_1"]["bn2"]["var"],
                                state["layer4.1.bn2.running_var"])
  np.testing.assert_array_equal(variables["params"]["layer4_1"]["bn2"]["scale"],
                                state["layer4.1.bn2.weight"])


def test_mismatch_error_lists_missing_unexpected_and_misshaped_keys():
  state = _resnet18_state_dict()
  del state["layer1.0.conv1.weight"], state["bn1.running_mean"]
  state["head.weight"] = np.zeros((4, 512), np.float32)
  state["fc.weight"] = np.zeros((10, 512), np.float32)
  target = abstract_variables(get_backbone("resnet18", num_classes=1000))
  with pytest.raises(WeightMismatchError) as e:
    torchvision_to_flax(state, target, "/ckpt/r18.pth", target_name="the jaxret resnet18 backbone")
  message = str(e.value)
  assert message.startswith("/ckpt/r18.pth: weights do not match the jaxret resnet18 backbone")
  assert "missing (2): " in message and "layer1.0.conv1.weight" in message
  assert "bn1.running_mean" in message
  assert "unexpected (1): head.weight" in message
  assert "mis-shaped (1): fc.weight is [10, 512] in the file, expected [1000, 512]" in message
  assert sorted(e.value.missing) == ["bn1.running_mean", "layer1.0.conv1.weight"]
  assert e.value.unexpected == ["head.weight"]
  assert e.value.misshaped == {"fc.weight": ((10, 512), (1000, 512))}


def test_mismatch_error_shortens_long_lists():
  target = abstract_variables(get_backbone("resnet50", num_classes=1000))
  with pytest.raises(WeightMismatchError, match=r"missing \(165\): .*, \.\.\. and 153 more") as e:
    torchvision_to_flax(_resnet18_state_dict(), target, "r18.pth")
  assert len(str(e.value)) < 2000
