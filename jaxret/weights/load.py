"""Loads torchvision ImageNet weights into jaxret backbones, alone or inside a larger model.

A weight file is either a torchvision state dict (`.pth`, `.safetensors`, `.npz` with torch
names, mapped by `jaxret/weights/torchvision_names.py`) or an `.npz` in Flax layout written by
`python -m launch.convert_weights IN OUT --arch ARCH`: keys "params/layer1_0/conv1/kernel",
"batch_stats/layer1_0/bn1/mean", ... and `FLAX_ARCH_KEY` holding the architecture's name.
"""
import functools
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from flax.typing import Dtype

from jaxret.backbones import get_backbone
from jaxret.weights.mismatch import check_names_and_shapes
from jaxret.weights.reader import read_checkpoint
from jaxret.weights.torchvision_names import CLASSIFIER_PREFIXES, torch_key, torchvision_to_flax

FLAX_ARCH_KEY = "__jaxret_arch__"


def abstract_variables(model: nn.Module) -> dict[str, Any]:
  """`model`'s variables as ShapeDtypeStructs (traced on a [1, 32, 32, 3] input, no compute)."""
  images = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  init = functools.partial(model.init, train=False)
  return jax.eval_shape(init, jax.random.key(0), images)


def _is_classifier(path: tuple[str, ...]) -> bool:
  """Whether Flax variable `path` belongs to the ImageNet classifier (fc / classifier_1)."""
  return torch_key(path).startswith(CLASSIFIER_PREFIXES)


def read_variables(path: str | os.PathLike, arch: str, target: Mapping[str, Any],
                   with_classifier: bool = True) -> dict[str, Any]:
  """Variables shaped like `target` ({"params", "batch_stats"}, arrays or ShapeDtypeStructs)
  read from the weight file at `path`, as NumPy arrays in each target leaf's dtype.

  With `with_classifier=False` the file's classifier (fc.* / classifier.*) is ignored and
  `target` must not contain one. Raises WeightMismatchError listing missing, unexpected and
  mis-shaped names, and ValueError when a converted `.npz` was made for another `arch`.
  """
  source = os.fspath(path)
  arrays = read_checkpoint(source)
  described = f"the jaxret {arch} backbone"
  if FLAX_ARCH_KEY not in arrays:
    skip = () if with_classifier else CLASSIFIER_PREFIXES
    return torchvision_to_flax(arrays, target, source, skip, described)
  file_arch = str(arrays.pop(FLAX_ARCH_KEY))
  if file_arch != arch:
    raise ValueError(f"{source}: converted for {file_arch!r} ({FLAX_ARCH_KEY}), but arch={arch!r}")
  flat_target = traverse_util.flatten_dict(dict(target), sep="/")
  found = {k: v for k, v in arrays.items()
           if with_classifier or not _is_classifier(tuple(k.split("/")))}
  check_names_and_shapes({k: v.shape for k, v in found.items()},
                         {k: v.shape for k, v in flat_target.items()}, source,
                         f"{described} (Flax names)")
  flat = {k: np.asarray(found[k], leaf.dtype) for k, leaf in flat_target.items()}
  return traverse_util.unflatten_dict(flat, sep="/")


def load_torchvision(path: str | os.PathLike, arch: str, num_classes: int = 1000,
                     dtype: Dtype = jnp.float32) -> tuple[nn.Module, dict[str, Any]]:
  """The backbone `arch` with its classifier and the weights in `path`, ready to apply.

  `model.apply(variables, images, train=False)["logits"]` gives [B, num_classes] logits for
  images [B, H, W, 3] normalised as `imagenet_eval_transform` does. `path` is a torchvision
  state dict (.pth / .safetensors / .npz) or the output of `launch.convert_weights`; `dtype` is
  the compute dtype (parameters stay float32).
  """
  model = get_backbone(arch, num_classes=num_classes, dtype=dtype)
  variables = read_variables(path, arch, abstract_variables(model))
  return model, jax.tree.map(jnp.asarray, variables)


def _subtree(tree: Mapping[str, Any], prefix: str, what: str) -> Mapping[str, Any]:
  """tree[a][b] for prefix "a/b" (tree itself for ""), else a KeyError naming `what`."""
  for part in filter(None, prefix.split("/")):
    if not isinstance(tree, Mapping) or part not in tree:
      keys = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
      raise KeyError(f"{what} has no {part!r} on prefix {prefix!r} (has {keys})")
    tree = tree[part]
  return tree


def _replace(tree: Mapping[str, Any], prefix: str, subtree: Any) -> dict[str, Any]:
  """A copy of `tree` with the subtree at `prefix` ("a/b") replaced; other entries shared."""
  parts = [p for p in prefix.split("/") if p]
  if not parts:
    return subtree
  return {**tree, parts[0]: _replace(tree[parts[0]], "/".join(parts[1:]), subtree)}


def _placed_like(old: Any, value: np.ndarray) -> Any:
  """`value` as a jax.Array with `old`'s sharding (every process holds the whole value)."""
  if isinstance(old, jax.Array):
    return jax.make_array_from_callback(old.shape, old.sharding, lambda index: value[index])
  return jnp.asarray(value)


def load_backbone_variables(path: str | os.PathLike, arch: str, params: Mapping[str, Any],
                            batch_stats: Mapping[str, Any], prefix: str = "backbone"
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
  """`(params, batch_stats)` with the backbone at `prefix` replaced by the weights in `path`.

  For `config.init_weights`: `params[prefix]` / `batch_stats[prefix]` ("a/b" for nested, ""
  for a bare backbone) hold a jaxret `arch` backbone; every backbone leaf except an ImageNet
  classifier is overwritten (same dtype and sharding as before), and everything else, the
  backbone's own classifier included, is returned unchanged. Raises WeightMismatchError when
  the file does not fit the backbone (e.g. another arch or width), KeyError for a bad prefix.
  """
  target = {"params": _subtree(params, prefix, "params"),
            "batch_stats": _subtree(batch_stats, prefix, "batch_stats")}
  flat = traverse_util.flatten_dict(dict(target))
  kept = {path: leaf for path, leaf in flat.items() if _is_classifier(path)}
  body = traverse_util.unflatten_dict({p: leaf for p, leaf in flat.items() if p not in kept})
  loaded = traverse_util.flatten_dict(read_variables(path, arch, body, with_classifier=False))
  merged = traverse_util.unflatten_dict(
      {p: kept[p] if p in kept else _placed_like(leaf, loaded[p]) for p, leaf in flat.items()})
  return (_replace(params, prefix, merged["params"]),
          _replace(batch_stats, prefix, merged.get("batch_stats", {})))
