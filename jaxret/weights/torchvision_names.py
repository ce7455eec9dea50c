"""torchvision state-dict names and layouts <-> jaxret backbone variables (ResNet, MobileNetV2).

The backbones name their modules after torchvision's (see `jaxret/backbones/resnet.py` and
`mobilenet_v2.py`), so one rule maps every Flax leaf to its torchvision key:

  module names: "_" -> "." ("layer1_0" -> "layer1.0", "features_3" -> "features.3",
                "conv_1_0" -> "conv.1.0", "classifier_1" -> "classifier.1"), except
                "downsample_conv" -> "downsample.0" and "downsample_bn" -> "downsample.1";
  leaves:       params kernel / scale -> weight, params bias -> bias,
                batch_stats mean -> running_mean, batch_stats var -> running_var.

Layouts: a conv kernel [kh, kw, in / groups, out] is torch's [out, in / groups, kh, kw]
transposed by (2, 3, 1, 0) (a depthwise [C, 1, 3, 3] becomes [3, 3, 1, C]); a Dense kernel
[in, out] is torch's Linear weight [out, in] transposed. torch BatchNorm2d (eps 1e-5,
momentum 0.1) is the backbones' nn.BatchNorm(epsilon=1e-5, momentum=0.9); its
`num_batches_tracked` counters have no counterpart and are ignored.
"""
from typing import Any, Mapping

import numpy as np
from flax import traverse_util

from jaxret.weights.mismatch import check_names_and_shapes

# Classifier heads: loaded by `load_torchvision`, skipped for a backbone inside a larger model.
CLASSIFIER_PREFIXES: tuple[str, ...] = ("fc.", "classifier.")
# Prefixes that wrap a whole state dict (DataParallel, {"state_dict": ...}, {"model": ...}).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "state_dict.", "model.")
_MODULE_NAMES = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
_LEAF_NAMES = {("params", "kernel"): "weight", ("params", "scale"): "weight",
               ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
               ("batch_stats", "var"): "running_var"}


def torch_key(path: tuple[str, ...]) -> str:
  """The torchvision key of Flax variable `path`, e.g.
  ("params", "layer1_0", "downsample_conv", "kernel") -> "layer1.0.downsample.0.weight"."""
  collection, *modules, leaf = path
  if (collection, leaf) not in _LEAF_NAMES:
    raise ValueError(f"variable {'/'.join(path)}: no torchvision counterpart for "
                     f"{collection}/{leaf}; expected one of {sorted(_LEAF_NAMES)}")
  names = [_MODULE_NAMES.get(m, m.replace("_", ".")) for m in modules]
  return ".".join([*names, _LEAF_NAMES[collection, leaf]])


def torch_shape(path: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
  """The torch shape of a Flax variable of `shape` at `path` (kernels transposed)."""
  if path[-1] == "kernel" and len(shape) == 4:
    kh, kw, cin, cout = shape
    return (cout, cin, kh, kw)
  if path[-1] == "kernel" and len(shape) == 2:
    return (shape[1], shape[0])
  return tuple(shape)


def flax_layout(path: tuple[str, ...], array: np.ndarray) -> np.ndarray:
  """A torch tensor in the layout of Flax variable `path`: OIHW -> HWIO, Linear weight.T."""
  if path[-1] == "kernel" and array.ndim == 4:
    return array.transpose(2, 3, 1, 0)
  if path[-1] == "kernel" and array.ndim == 2:
    return array.T
  return array


def strip_wrapper_prefix(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """`state_dict` without a prefix every key shares ("module.", "state_dict.", "model.")."""
  state_dict = dict(state_dict)
  while state_dict:
    prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state_dict)), None)
    if prefix is None:
      return state_dict
    state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
  return state_dict


def torchvision_to_flax(state_dict: Mapping[str, np.ndarray], target: Mapping[str, Any],
                        source: str, skip_prefixes: tuple[str, ...] = (),
                        target_name: str = "the jaxret backbone") -> dict[str, Any]:
  """Variables shaped like `target` ({"params": ..., "batch_stats": ...} of arrays or
  ShapeDtypeStructs) filled from a torchvision `state_dict` (name -> array), as NumPy arrays in
  each target leaf's dtype.

  Keys starting with `skip_prefixes` and `*.num_batches_tracked` in the file are ignored.
  Raises WeightMismatchError naming `source`, `target_name` and every missing, unexpected or
  mis-shaped key.
  """
  flat_target = traverse_util.flatten_dict(dict(target))
  params_first = sorted(flat_target, key=lambda path: path[0] != "params")  # stable: module order
  expected = {torch_key(path): path for path in params_first}
  found = {k: v for k, v in strip_wrapper_prefix(state_dict).items()
           if not k.endswith(".num_batches_tracked") and not k.startswith(skip_prefixes)}
  check_names_and_shapes(
      {k: np.shape(v) for k, v in found.items()},
      {k: torch_shape(path, flat_target[path].shape) for k, path in expected.items()},
      source, f"{target_name} (torchvision names)")
  flat = {path: np.asarray(flax_layout(path, np.asarray(found[key])), flat_target[path].dtype)
          for key, path in expected.items()}
  return traverse_util.unflatten_dict(flat)
