"""Tests for jaxret/weights/load.py and launch/convert_weights.py against PyTorch ResNets.

PyTorch models with torchvision's names (tests/weights/torchvision_reference.py), random weights
and non-trivial BatchNorm statistics, are saved with torch.save, loaded or converted by jaxret,
and must give PyTorch's eval-mode logits.
"""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxret.backbones import get_backbone
from jaxret.weights import (FLAX_ARCH_KEY, WeightMismatchError, abstract_variables,
                            load_backbone_variables, load_torchvision)

import torch  # test dependency
import torchvision_reference  # noqa: E402  (needs torch)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _torch_model(arch: str, seed: int) -> "torch.nn.Module":
  torch.manual_seed(seed)
  return torchvision_reference.randomize_batch_norm(torchvision_reference.build(arch), seed).eval()


def _torch_logits(model: "torch.nn.Module", images: np.ndarray) -> np.ndarray:
  """PyTorch eval-mode logits for NHWC `images`."""
  with torch.no_grad():
    return model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()


def _jax_logits(model: nn.Module, variables: dict, images: np.ndarray) -> np.ndarray:
  return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False)["logits"])(variables, images))


def _assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-4) -> None:
  """Max abs error within `rtol` of the largest |logit|."""
  assert got.shape == want.shape
  error = np.abs(got - want).max() / np.abs(want).max()
  assert error < rtol, f"relative error {error:.2e}"


def _images(size: int, n: int = 2) -> np.ndarray:
  return np.random.default_rng(0).standard_normal((n, size, size, 3)).astype(np.float32)


def test_resnet50_converted_by_the_command_matches_pytorch(tmp_path):
  torch_model = _torch_model("resnet50", seed=0)
  src, dst = tmp_path / "resnet50.pth", tmp_path / "resnet50.npz"
  torch.save(torch_model.state_dict(), src)
  result = subprocess.run([sys.executable, "-m", "launch.convert_weights", str(src), str(dst),
                           "--arch", "resnet50"], cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["arch"] == "resnet50" and summary["tensors"] == 161 + 2 * 53  # params + BN stats
  with np.load(dst, allow_pickle=False) as npz:
    assert str(npz[FLAX_ARCH_KEY]) == "resnet50"
    np.testing.assert_array_equal(npz["batch_stats/layer3_2/bn2/mean"],
                                  torch_model.layer3[2].bn2.running_mean.numpy())
  model, variables = load_torchvision(dst, "resnet50")
  images = _images(64)
  _assert_close(_jax_logits(model, variables, images), _torch_logits(torch_model, images))
  with pytest.raises(ValueError, match=r"resnet50.npz: converted for 'resnet50' .*arch='resnet101'"):
    load_torchvision(dst, "resnet101")


def test_resnet18_legacy_pth_loads_directly_and_matches_pytorch(tmp_path):
  torch_model = _torch_model("resnet18", seed=1)
  path = tmp_path / "resnet18.pth"
  torch.save({"state_dict": torch_model.state_dict(), "epoch": 90}, path,
             _use_new_zipfile_serialization=False)
  model, variables = load_torchvision(path, "resnet18")
  assert model.num_classes == 1000
  images = _images(48)
  _assert_close(_jax_logits(model, variables, images), _torch_logits(torch_model, images))


def test_convert_without_arch_keeps_torchvision_names(tmp_path):
  from jaxret.cli.convert_weights import convert

  torch_model = _torch_model("resnet18", seed=2)
  src, dst = tmp_path / "r18.pth", tmp_path / "r18.npz"
  torch.save(torch_model.state_dict(), src)
  summary = convert(str(src), str(dst))
  assert summary["tensors"] == len(torch_model.state_dict())
  model, variables = load_torchvision(dst, "resnet18")
  np.testing.assert_array_equal(variables["params"]["conv1"]["kernel"],
                                torch_model.conv1.weight.detach().numpy().transpose(2, 3, 1, 0))
  with pytest.raises(WeightMismatchError, match=r"r18.npz: weights do not match the jaxret resnet34"):
    convert(str(dst), str(tmp_path / "r34.npz"), "resnet34")
  with pytest.raises(ValueError, match=r"expected a path ending in .npz"):
    convert(str(src), str(tmp_path / "out.msgpack"))


class _Retrieval(nn.Module):
  """A method-like model: a width-1 ResNet-18 backbone without classifier, plus a head."""

  @nn.compact
  def __call__(self, images, *, train):
    features = get_backbone("resnet18", name="backbone")(images, train=train)["res5"]
    return nn.Dense(8, name="head")(features.mean(axis=(1, 2)))


def _variables(model: nn.Module, sharding=None) -> dict:
  """`model`'s variables filled with ones (tracing only: compiling ResNet init takes ~20 s here)."""
  shapes = abstract_variables(model)
  return jax.tree.map(lambda s: jax.device_put(jnp.ones(s.shape, s.dtype), sharding), shapes)


def test_load_backbone_variables_fills_only_the_backbone_and_keeps_sharding(tmp_path):
  torch_model = _torch_model("resnet18", seed=3)
  path = tmp_path / "resnet18.pth"
  torch.save(torch_model.state_dict(), path)
  replicated = NamedSharding(Mesh(np.array(jax.devices()), ("data",)), PartitionSpec())
  variables = _variables(_Retrieval(), replicated)
  params, stats = load_backbone_variables(path, "resnet18", variables["params"],
                                          variables["batch_stats"], prefix="backbone")
  assert params["head"] is variables["params"]["head"]  # untouched, and fc.* was not needed
  kernel = params["backbone"]["layer2_1"]["conv2"]["kernel"]
  np.testing.assert_array_equal(kernel, torch_model.layer2[1].conv2.weight.detach().numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(stats["backbone"]["bn1"]["var"], torch_model.bn1.running_var.numpy())
  assert kernel.sharding == replicated and kernel.dtype == jnp.float32
  assert jax.tree.structure(params) == jax.tree.structure(variables["params"])
  assert jax.tree.structure(stats) == jax.tree.structure(variables["batch_stats"])
  # The backbone alone (prefix ""), with its own 10-way classifier kept as it was.
  bare = _variables(get_backbone("resnet18", num_classes=10))
  params, _ = load_backbone_variables(path, "resnet18", bare["params"], bare["batch_stats"], prefix="")
  assert params["fc"]["kernel"] is bare["params"]["fc"]["kernel"]
  np.testing.assert_array_equal(params["conv1"]["kernel"],
                                torch_model.conv1.weight.detach().numpy().transpose(2, 3, 1, 0))
  with pytest.raises(KeyError, match=r"params has no 'encoder' on prefix 'encoder'"):
    load_backbone_variables(path, "resnet18", variables["params"], variables["batch_stats"], prefix="encoder")
  small = _variables(get_backbone("resnet18", width_multiplier=0.5))
  with pytest.raises(WeightMismatchError, match=r"the jaxret resnet18 backbone") as e:
    load_backbone_variables(path, "resnet18", small["params"], small["batch_stats"], prefix="")
  assert "conv1.weight is [64, 3, 7, 7] in the file, expected [32, 3, 7, 7]" in str(e.value)
