"""Tests for jaxret/backbones/resnet.py: torchvision parameter counts, shapes, names and numerics.

Full-size models are only traced (jax.eval_shape); real forward passes use tiny widths. The
numeric test reads the Flax variables through the torchvision key mapping of the module
docstring and runs a NumPy forward pass written the way torchvision computes, so it checks
padding, stride placement, shortcuts and the naming scheme together.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.backbones import BACKBONES, get_backbone
from jaxret.backbones.resnet import ResNet

STAGE_SIZES = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3),
               "resnet101": (3, 4, 23, 3)}


def _shapes(model: ResNet, size: int) -> tuple[dict, dict]:
  """(variables, outputs) as ShapeDtypeStructs for a [1, size, size, 3] input; no compute."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  outputs = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  return variables, outputs


@pytest.mark.parametrize("name,count", [("resnet18", 11_689_512), ("resnet34", 21_797_672),
                                        ("resnet50", 25_557_032), ("resnet101", 44_549_160)])
def test_parameter_count_matches_torchvision(name, count):
  variables, _ = _shapes(get_backbone(name, num_classes=1000), 64)
  assert sum(p.size for p in jax.tree.leaves(variables["params"])) == count


@pytest.mark.parametrize("name,channels", [("resnet18", (64, 128, 256, 512)),
                                           ("resnet50", (256, 512, 1024, 2048))])
def test_stage_shapes_follow_torch_floor_formulas(name, channels):
  def out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1

  size = out(out(225, 7, 2, 3), 3, 2, 1)  # conv1 -> 113, maxpool -> 57
  expected = {}
  for s, c in enumerate(channels):
    size = size if s == 0 else out(size, 3, 2, 1)
    expected[f"res{s + 2}"] = (1, size, size, c)
  model = get_backbone(name, num_classes=10)
  _, outputs = _shapes(model, 225)
  assert {k: v.shape for k, v in outputs.items()} == expected | {"logits": (1, 10)}
  assert [v[1] for k, v in sorted(expected.items())] == [57, 29, 15, 8]
  assert model.stage_channels() == {k: v[-1] for k, v in expected.items()}


def test_parameter_names_and_hwio_shapes():
  variables, _ = _shapes(get_backbone("resnet50", num_classes=1000), 64)
  params = jax.tree.map(lambda p: p.shape, variables["params"])
  assert set(params) == {"conv1", "bn1", "fc"} | {
      f"layer{s + 1}_{b}" for s, n in enumerate(STAGE_SIZES["resnet50"]) for b in range(n)}
  assert params["conv1"] == {"kernel": (7, 7, 3, 64)}  # torch [64, 3, 7, 7]
  assert params["bn1"] == {"scale": (64,), "bias": (64,)}
  assert set(params["layer1_0"]) == {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3",
                                     "downsample_conv", "downsample_bn"}
  assert "downsample_conv" not in params["layer1_1"]
  assert params["layer1_0"]["downsample_conv"]["kernel"] == (1, 1, 64, 256)
  assert params["layer2_0"]["conv1"]["kernel"] == (1, 1, 256, 128)
  assert params["layer2_0"]["conv2"]["kernel"] == (3, 3, 128, 128)  # torch [128, 128, 3, 3]
  assert params["layer3_0"]["downsample_conv"]["kernel"] == (1, 1, 512, 1024)
  assert params["fc"] == {"kernel": (2048, 1000), "bias": (1000,)}  # torch weight [1000, 2048]
  stats = jax.tree.map(lambda p: p.shape, variables["batch_stats"])
  assert stats["layer4_2"]["bn3"] == {"mean": (2048,), "var": (2048,)}
  small, _ = _shapes(get_backbone("resnet18"), 64)
  assert set(small["params"]["layer1_0"]) == {"conv1", "bn1", "conv2", "bn2"}
  assert small["params"]["layer2_0"]["downsample_conv"]["kernel"].shape == (1, 1, 64, 128)
  assert "fc" not in small["params"]


class TorchStateDict:
  """Reads Flax ResNet variables by torchvision key (the resnet.py docstring's mapping)."""

  def __init__(self, variables: dict):
    self.variables = variables
    self.used: set[tuple[str, ...]] = set()

  def __call__(self, key: str) -> np.ndarray:
    *modules, leaf = key.split(".")
    path = re.sub(r"^layer(\d)\.(\d+)", r"layer\1_\2", ".".join(modules))
    path = path.replace("downsample.0", "downsample_conv").replace("downsample.1", "downsample_bn")
    names = {"running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var"),
             "weight": ("params", "scale" if "bn" in path.split(".")[-1] else "kernel")}
    collection, name = names.get(leaf, ("params", leaf))
    full = (collection, *path.split("."), name)
    value = self.variables
    for part in full:
      value = value[part]
    self.used.add(full)
    value = np.asarray(value, np.float64)
    if name == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    return value


def _conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
  """torch.nn.functional.conv2d: x [N, C, H, W], w [O, C, kh, kw]."""
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  kh, kw = w.shape[2:]
  oh, ow = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
  out = 0
  for i in range(kh):
    for j in range(kw):
      patch = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
      out = out + np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
  return out


def _max_pool(x: np.ndarray) -> np.ndarray:
  """torch max_pool2d(kernel 3, stride 2, padding 1): implicit -inf padding."""
  x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
  oh, ow = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
  return np.max([x[:, :, i:i + 2 * oh - 1:2, j:j + 2 * ow - 1:2] for i in range(3) for j in range(3)],
                axis=0)


def _torch_resnet(sd: TorchStateDict, x: np.ndarray, stage_sizes, bottleneck: bool) -> dict:
  """torchvision ResNet.forward in eval mode, NCHW, from a state dict."""
  relu = lambda t: np.maximum(t, 0)

  def bn(t, p):
    scale = sd(f"{p}.weight") / np.sqrt(sd(f"{p}.running_var") + 1e-5)
    shift = sd(f"{p}.bias") - sd(f"{p}.running_mean") * scale
    return t * scale[:, None, None] + shift[:, None, None]

  x = _max_pool(relu(bn(_conv2d(x, sd("conv1.weight"), 2, 3), "bn1")))
  out = {}
  for s, n in enumerate(stage_sizes):
    for b in range(n):
      p, stride = f"layer{s + 1}.{b}", (2 if s > 0 and b == 0 else 1)
      if bottleneck:
        y = relu(bn(_conv2d(x, sd(f"{p}.conv1.weight"), 1, 0), f"{p}.bn1"))
        y = relu(bn(_conv2d(y, sd(f"{p}.conv2.weight"), stride, 1), f"{p}.bn2"))
        y = bn(_conv2d(y, sd(f"{p}.conv3.weight"), 1, 0), f"{p}.bn3")
      else:
        y = relu(bn(_conv2d(x, sd(f"{p}.conv1.weight"), stride, 1), f"{p}.bn1"))
        y = bn(_conv2d(y, sd(f"{p}.conv2.weight"), 1, 1), f"{p}.bn2")
      if stride != 1 or x.shape[1] != y.shape[1]:
        x = bn(_conv2d(x, sd(f"{p}.downsample.0.weight"), stride, 0), f"{p}.downsample.1")
      x = relu(y + x)
    out[f"res{s + 2}"] = x.transpose(0, 2, 3, 1)
  out["logits"] = x.mean(axis=(2, 3)) @ sd("fc.weight").T + sd("fc.bias")
  return out


def _random_variables(model: ResNet, images: jnp.ndarray, seed: int) -> dict:
  """Variables drawn in NumPy: He-scaled kernels, non-trivial BN scale, bias and running stats.

  (`model.init` would compile one threefry kernel per shape, ~1 s each on this CPU.)
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)

  def draw(path, leaf):
    name, shape = path[-1].key, leaf.shape
    if name == "kernel":
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
    elif name in ("scale", "var"):
      value = rng.uniform(0.5, 1.5, shape)
    else:
      value = rng.normal(0, 0.1, shape)
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.mark.parametrize("name,width", [("resnet18", 8), ("resnet50", 4)])
def test_forward_matches_torchvision_reference(name, width):
  # 64 px keeps every stride-2 input even, where 'SAME' padding would differ from torch's.
  model = get_backbone(name, width_multiplier=width / 64, num_classes=5)
  images = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
  variables = _random_variables(model, images, seed=2)
  got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  sd = TorchStateDict(variables)
  want = _torch_resnet(sd, np.asarray(images, np.float64).transpose(0, 3, 1, 2),
                       STAGE_SIZES[name], bottleneck=name == "resnet50")
  leaves = jax.tree_util.tree_leaves_with_path(variables)
  assert sd.used == {tuple(k.key for k in path) for path, _ in leaves}  # every variable is mapped
  assert set(got) == set(want)
  for key, ref in want.items():
    assert np.std(ref) > 1e-3, key
    np.testing.assert_allclose(got[key], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=key)


def test_train_updates_batch_stats_and_eval_does_not():
  model = get_backbone("resnet18", width_multiplier=4 / 64, num_classes=3)
  images = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  variables = _random_variables(model, images, seed=2)
  apply = jax.jit(model.apply, static_argnames=("train", "mutable", "capture_intermediates"))
  trained, state = apply(variables, images, train=True, mutable=("batch_stats", "intermediates"),
                         capture_intermediates=True)
  before, after = variables["batch_stats"], state["batch_stats"]
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), before, after)
  assert all(jax.tree.leaves(changed))
  # torch momentum 0.1 == Flax momentum 0.9: the running mean moves 10% of the way to the batch's.
  conv1 = state["intermediates"]["conv1"]["__call__"][0]
  expected = 0.9 * before["bn1"]["mean"] + 0.1 * np.mean(conv1, axis=(0, 1, 2))
  np.testing.assert_allclose(after["bn1"]["mean"], expected, rtol=1e-5, atol=1e-6)

  outputs, state = apply(variables, images, train=False, mutable=("batch_stats",))
  jax.tree.map(np.testing.assert_array_equal, state["batch_stats"], before)
  # Eval uses running statistics: a sample's output does not depend on the rest of the batch.
  alone = apply(variables, images[:1], train=False)
  np.testing.assert_allclose(alone["res5"][0], outputs["res5"][0], rtol=1e-5, atol=1e-5)
  assert not np.allclose(trained["res5"], outputs["res5"], rtol=1e-3, atol=1e-3)


def test_bfloat16_compute_keeps_float32_params():
  model = get_backbone("resnet18", width_multiplier=4 / 64, num_classes=3, dtype=jnp.bfloat16)
  images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  initialized = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  assert {p.dtype for p in jax.tree.leaves(initialized)} == {jnp.dtype(jnp.float32)}
  variables = _random_variables(model, images, seed=2)
  outputs = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  assert {k: v.dtype for k, v in outputs.items()} == {
      k: jnp.dtype(jnp.bfloat16) for k in ("res2", "res3", "res4", "res5", "logits")}
  nchw = np.asarray(images, np.float64).transpose(0, 3, 1, 2)
  reference = _torch_resnet(TorchStateDict(variables), nchw, STAGE_SIZES["resnet18"], bottleneck=False)
  for key in ("res5", "logits"):
    error = np.linalg.norm(np.asarray(outputs[key], np.float32) - reference[key])
    assert error < 0.1 * np.linalg.norm(reference[key]), key  # bfloat16 accuracy; measured ~0.03
  _, state = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, images)
  assert {p.dtype for p in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}


def test_get_backbone_names():
  assert set(BACKBONES) == {"resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2"}
  model = get_backbone("resnet34", width_multiplier=8 / 64, num_classes=7)
  assert isinstance(model, ResNet) and model.width == 8 and model.num_classes == 7
  with pytest.raises(ValueError, match="resnet18.*") as err:
    get_backbone("resnet152")
  assert "resnet152" in str(err.value) and "mobilenet_v2" in str(err.value)
