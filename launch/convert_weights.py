"""Converts a torchvision checkpoint to an `.npz` that jaxret loads without torch or pickle.

  python -m launch.convert_weights resnet50-0676ba61.pth /tmp/resnet50.npz --arch resnet50
  python -m launch.convert_weights model.safetensors /tmp/weights.npz   # names kept as they are

With --arch the weights are checked against that jaxret backbone (its ImageNet classifier
included) and written in Flax layout ("params/layer1_0/conv1/kernel", "batch_stats/bn1/mean",
plus the arch under "__jaxret_arch__"); without it the file's tensors are written unchanged under
their torchvision names. Either output loads with `jaxret.weights.load_torchvision(OUT, arch)`
and `load_backbone_variables` (`config.init_weights = OUT`). Prints one JSON line.
"""
import json
import os

import numpy as np
from absl import app, flags
from flax import traverse_util

from jaxret import user_errors
from jaxret.backbones import get_backbone
from jaxret.weights import FLAX_ARCH_KEY, abstract_variables, read_checkpoint, read_variables

_ARCH = flags.DEFINE_string("arch", None, "jaxret backbone to check against and lay the weights "
                            "out for (resnet18, resnet34, resnet50, resnet101, mobilenet_v2); "
                            "unset: keep torchvision names.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 1000, "Classifier outputs in the checkpoint.")


def convert(src: str, dst: str, arch: str | None = None, num_classes: int = 1000) -> dict:
  """Writes the weights in `src` to the `.npz` `dst`; returns a summary (arch, tensors, bytes)."""
  if not dst.endswith(".npz"):
    raise ValueError(f"output {dst!r}: expected a path ending in .npz")
  if arch is None:
    arrays = read_checkpoint(src)
  else:
    model = get_backbone(arch, num_classes=num_classes)
    variables = read_variables(src, arch, abstract_variables(model))
    arrays = traverse_util.flatten_dict(variables, sep="/")
    arrays[FLAX_ARCH_KEY] = np.array(arch)
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  np.savez(dst, **arrays)
  return {"src": src, "dst": dst, "arch": arch, "tensors": len(arrays) - (arch is not None),
          "bytes": os.path.getsize(dst)}


def main(argv: list[str]) -> None:
  if len(argv) != 3:
    raise app.UsageError(f"expected IN OUT, got {argv[1:]}: "
                         "python -m launch.convert_weights IN.pth OUT.npz [--arch resnet50]")
  try:
    summary = convert(argv[1], argv[2], _ARCH.value, _NUM_CLASSES.value)
  except (OSError, ValueError, KeyError) as e:  # a bad file: its message says what and where
    raise SystemExit(f"convert_weights: {e}") from None
  print(json.dumps(summary))


if __name__ == "__main__":
  user_errors.run(main)
