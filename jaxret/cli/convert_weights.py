"""Converts a torchvision checkpoint to an `.npz` that jaxret loads without torch or pickle.

  jaxret-convert-weights resnet50-0676ba61.pth /tmp/resnet50.npz --arch resnet50
  jaxret-convert-weights model.safetensors /tmp/weights.npz   # names kept as they are
  (from a checkout: python -m launch.convert_weights ...)

With --arch the weights are checked against that jaxret backbone (its ImageNet classifier
included) and written in Flax layout ("params/layer1_0/conv1/kernel", "batch_stats/bn1/mean",
plus the arch under "__jaxret_arch__"); without it the file's tensors are written unchanged under
their torchvision names. Either output loads with `jaxret.weights.load_torchvision(OUT, arch)`
and `load_backbone_variables` (`config.init_weights = OUT`). Prints one JSON line.
"""
import json
import os
import sys
from collections.abc import Sequence

import numpy as np
from absl import flags
from flax import traverse_util

from jaxret.backbones import get_backbone
from jaxret.cli import command
from jaxret.user_errors import InputError
from jaxret.weights import FLAX_ARCH_KEY, abstract_variables, read_checkpoint, read_variables

FLAGS = flags.FlagValues()
_ARCH = flags.DEFINE_string("arch", None, "jaxret backbone to check against and lay the weights "
                            "out for (resnet18, resnet34, resnet50, resnet101, mobilenet_v2); "
                            "unset: keep torchvision names.", flag_values=FLAGS)
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 1000, "Classifier outputs in the checkpoint.", flag_values=FLAGS)


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


def _convert(positional: list[str]) -> None:
  if len(positional) != 2:
    raise flags.Error(f"expected IN OUT, got {positional}: jaxret-convert-weights IN.pth OUT.npz [--arch resnet50]")
  try:
    summary = convert(*positional, _ARCH.value, _NUM_CLASSES.value)
  except (OSError, ValueError, KeyError) as e:  # a bad file: its message says what and where
    raise InputError(f"convert_weights: {e}") from e
  print(json.dumps(summary))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_convert, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-convert-weights` console script."""
  sys.exit(main())
