"""Tests for jaxret/backbones/mobilenet_v2.py: torchvision parameter counts, shapes, names, numerics.

Full-size models are only traced (jax.eval_shape); real forward passes use width_mult 0.25.
The numeric test reads the Flax variables through the torchvision key mapping of the module
docstring and runs a NumPy forward pass written the way torchvision computes.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxret.backbones import get_backbone
from jaxret.backbones.mobilenet_v2 import MobileNetV2, _make_divisible

# torchvision's [t, c, n, s] table, restated here so the test does not trust the module's copy.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


def _shapes(model: MobileNetV2, size: int) -> tuple[dict, dict]:
  """(variables, outputs) as ShapeDtypeStructs for a [1, size, size, 3] input; no compute."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  outputs = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  return variables, outputs


def test_parameter_count_matches_torchvision():
  variables, _ = _shapes(get_backbone("mobilenet_v2", num_classes=1000), 64)
  assert sum(p.size for p in jax.tree.leaves(variables["params"])) == 3_504_872


def test_make_divisible_matches_torchvision():
  # Values torchvision's _make_divisible gives for these widths (0.35 stem: 11.2 -> 16, not 8).
  assert [_make_divisible(32 * m) for m in (0.35, 0.5, 0.75, 1.0, 1.4)] == [16, 16, 24, 32, 48]
  assert [_make_divisible(c * 0.35) for c in (16, 24, 96, 320)] == [8, 8, 32, 112]
  assert _make_divisible(1280 * 1.4) == 1792


def test_stage_shapes_follow_torch_floor_formulas():
  def out(size: int, stride: int) -> int:  # 3x3 conv, padding 1 (1x1 convs keep the size)
    return (size + 2 - 3) // stride + 1

  s2 = out(out(225, 2), 2)  # features.0 -> 113, features.2 -> 57
  s3, s4 = out(s2, 2), out(out(s2, 2), 2)
  s5 = out(s4, 2)
  assert (s2, s3, s4, s5) == (57, 29, 15, 8)
  model = get_backbone("mobilenet_v2", num_classes=10)
  _, outputs = _shapes(model, 225)
  assert {k: v.shape for k, v in outputs.items()} == {
      "res2": (1, s2, s2, 24), "res3": (1, s3, s3, 32), "res4": (1, s4, s4, 96), "res5": (1, s5, s5, 1280),
      "logits": (1, 10)}
  assert model.stage_channels() == {"res2": 24, "res3": 32, "res4": 96, "res5": 1280}
  wide = get_backbone("mobilenet_v2", width_multiplier=1.4)
  _, outputs = _shapes(wide, 64)
  assert wide.stage_channels() == {k: v.shape[-1] for k, v in outputs.items()} == {
      "res2": 32, "res3": 48, "res4": 136, "res5": 1792}


def test_parameter_names_and_hwio_shapes():
  variables, _ = _shapes(get_backbone("mobilenet_v2", num_classes=1000), 64)
  params = jax.tree.map(lambda p: p.shape, variables["params"])
  assert set(params) == {f"features_{i}" for i in range(19)} | {"classifier_1"}
  assert params["features_0"] == {"0": {"kernel": (3, 3, 3, 32)}, "1": {"scale": (32,), "bias": (32,)}}
  assert params["features_1"] == {  # t = 1: no expansion conv
      "conv_0_0": {"kernel": (3, 3, 1, 32)},  # depthwise, torch [32, 1, 3, 3]
      "conv_0_1": {"scale": (32,), "bias": (32,)},
      "conv_1": {"kernel": (1, 1, 32, 16)},
      "conv_2": {"scale": (16,), "bias": (16,)}}
  assert params["features_2"] == {
      "conv_0_0": {"kernel": (1, 1, 16, 96)},
      "conv_0_1": {"scale": (96,), "bias": (96,)},
      "conv_1_0": {"kernel": (3, 3, 1, 96)},
      "conv_1_1": {"scale": (96,), "bias": (96,)},
      "conv_2": {"kernel": (1, 1, 96, 24)},
      "conv_3": {"scale": (24,), "bias": (24,)}}
  assert params["features_17"]["conv_2"]["kernel"] == (1, 1, 960, 320)
  assert params["features_18"]["0"]["kernel"] == (1, 1, 320, 1280)
  assert params["classifier_1"] == {"kernel": (1280, 1000), "bias": (1000,)}  # torch weight [1000, 1280]
  stats = jax.tree.map(lambda p: p.shape, variables["batch_stats"])
  assert stats["features_18"]["1"] == {"mean": (1280,), "var": (1280,)}
  assert stats["features_5"]["conv_1_1"] == {"mean": (192,), "var": (192,)}


def _get(tree: dict, path: tuple[str, ...]):
  """tree[path[0]][path[1]]..."""
  for part in path:
    tree = tree[part]
  return tree


class TorchStateDict:
  """Reads Flax MobileNetV2 variables by torchvision key (the mobilenet_v2.py docstring's mapping)."""

  def __init__(self, variables: dict):
    self.variables = variables
    self.used: set[tuple[str, ...]] = set()

  def __call__(self, key: str) -> np.ndarray:
    *modules, leaf = key.split(".")
    match = re.fullmatch(r"features\.(\d+)\.(.+)", ".".join(modules))
    path = (f"features_{match[1]}", match[2].replace(".", "_")) if match else ("_".join(modules),)
    weight = "kernel" if "kernel" in _get(self.variables["params"], path) else "scale"  # conv/Linear or BN
    names = {"running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var"),
             "weight": ("params", weight)}
    collection, name = names.get(leaf, ("params", leaf))
    full = (collection, *path, name)
    self.used.add(full)
    value = np.asarray(_get(self.variables, full), np.float64)
    if name == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    return value


def _conv2d(x: np.ndarray, w: np.ndarray, stride: int, groups: int) -> np.ndarray:
  """torch conv2d with padding kernel // 2: x [N, C, H, W], w [O, C / groups, kh, kw]."""
  kh, kw = w.shape[2:]
  x = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
  n, c, h, wd = x.shape
  oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
  xg = x.reshape(n, groups, c // groups, h, wd)
  wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
  out = 0
  for i in range(kh):
    for j in range(kw):
      patch = xg[..., i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
      out = out + np.einsum("ngchw,goc->ngohw", patch, wg[..., i, j])
  return out.reshape(n, w.shape[0], oh, ow)


def _torch_mobilenet_v2(sd: TorchStateDict, x: np.ndarray) -> dict:
  """torchvision MobileNetV2.forward in eval mode, NCHW, from a state dict; stage outputs too."""
  def bn(t, p):
    scale = sd(f"{p}.weight") / np.sqrt(sd(f"{p}.running_var") + 1e-5)
    shift = sd(f"{p}.bias") - sd(f"{p}.running_mean") * scale
    return t * scale[:, None, None] + shift[:, None, None]

  def conv_bn_relu6(t, p, stride, depthwise=False):  # Conv2dNormActivation
    t = _conv2d(t, sd(f"{p}.0.weight"), stride, t.shape[1] if depthwise else 1)
    return np.clip(bn(t, f"{p}.1"), 0, 6)

  x = conv_bn_relu6(x, "features.0", 2)
  features, i = [x], 1
  for t, _, n, s in SETTINGS:
    for r in range(n):
      stride, p = (s if r == 0 else 1), f"features.{i}.conv"
      y = conv_bn_relu6(x, f"{p}.0", 1) if t != 1 else x
      j = 1 if t != 1 else 0
      y = conv_bn_relu6(y, f"{p}.{j}", stride, depthwise=True)
      y = bn(_conv2d(y, sd(f"{p}.{j + 1}.weight"), 1, 1), f"{p}.{j + 2}")
      x = x + y if stride == 1 and x.shape == y.shape else y
      features.append(x)
      i += 1
  x = conv_bn_relu6(x, "features.18", 1)
  features.append(x)
  stages = {"res2": 3, "res3": 6, "res4": 13, "res5": 18}
  out = {k: features[i].transpose(0, 2, 3, 1) for k, i in stages.items()}
  out["logits"] = x.mean(axis=(2, 3)) @ sd("classifier.1.weight").T + sd("classifier.1.bias")
  return out


def _random_variables(model: MobileNetV2, images: jnp.ndarray, seed: int) -> dict:
  """Variables drawn in NumPy: He-scaled kernels, non-trivial BN scale, bias and running stats."""
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


def test_forward_matches_torchvision_reference():
  # 64 px keeps every stride-2 input even, where 'SAME' padding would differ from torch's.
  model = get_backbone("mobilenet_v2", width_multiplier=0.25, num_classes=5)
  images = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
  variables = _random_variables(model, images, seed=2)
  got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  sd = TorchStateDict(variables)
  want = _torch_mobilenet_v2(sd, np.asarray(images, np.float64).transpose(0, 3, 1, 2))
  leaves = jax.tree_util.tree_leaves_with_path(variables)
  assert sd.used == {tuple(k.key for k in path) for path, _ in leaves}  # every variable is mapped
  assert set(got) == set(want)
  for key, ref in want.items():
    assert np.std(ref) > 1e-3, key
    np.testing.assert_allclose(got[key], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=key)


def test_train_updates_batch_stats_and_eval_does_not():
  model = get_backbone("mobilenet_v2", width_multiplier=0.25, num_classes=3)
  images = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  variables = _random_variables(model, images, seed=2)
  apply = jax.jit(model.apply, static_argnames=("train", "mutable", "capture_intermediates"))
  train = lambda seed: apply(variables, images, train=True, rngs={"dropout": jax.random.key(seed)},
                             mutable=("batch_stats", "intermediates"), capture_intermediates=True)
  outputs, state = train(0)
  before, after = variables["batch_stats"], state["batch_stats"]
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), before, after)
  assert all(jax.tree.leaves(changed))
  # torch momentum 0.1 == Flax momentum 0.9: the running mean moves 10% of the way to the batch's.
  conv = state["intermediates"]["features_0"]["0"]["__call__"][0]
  expected = 0.9 * before["features_0"]["1"]["mean"] + 0.1 * np.mean(conv, axis=(0, 1, 2))
  np.testing.assert_allclose(after["features_0"]["1"]["mean"], expected, rtol=1e-5, atol=1e-6)
  # Dropout (p = 0.2) acts on the pooled features only when training.
  other, _ = train(1)
  np.testing.assert_array_equal(other["res5"], outputs["res5"])
  assert not np.allclose(other["logits"], outputs["logits"])

  evaluated, state = apply(variables, images, train=False, mutable=("batch_stats",))
  jax.tree.map(np.testing.assert_array_equal, state["batch_stats"], before)
  assert not np.allclose(evaluated["res5"], outputs["res5"], rtol=1e-3, atol=1e-3)


def test_bfloat16_compute_keeps_float32_params():
  model = get_backbone("mobilenet_v2", width_multiplier=0.25, num_classes=3, dtype=jnp.bfloat16)
  images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  initialized = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  assert {p.dtype for p in jax.tree.leaves(initialized)} == {jnp.dtype(jnp.float32)}
  variables = _random_variables(model, images, seed=2)
  outputs = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  assert {k: v.dtype for k, v in outputs.items()} == {
      k: jnp.dtype(jnp.bfloat16) for k in ("res2", "res3", "res4", "res5", "logits")}
  nchw = np.asarray(images, np.float64).transpose(0, 3, 1, 2)
  reference = _torch_mobilenet_v2(TorchStateDict(variables), nchw)
  for key in ("res5", "logits"):
    error = np.linalg.norm(np.asarray(outputs[key], np.float32) - reference[key])
    assert error < 0.1 * np.linalg.norm(reference[key]), key  # bfloat16 accuracy


def test_get_backbone_builds_mobilenet_v2():
  model = get_backbone("mobilenet_v2", width_multiplier=0.5, num_classes=7)
  assert isinstance(model, MobileNetV2) and model.width_mult == 0.5 and model.num_classes == 7
