"""ImageNet weights from PyTorch checkpoints, without torch: `.pth` / `.safetensors` / `.npz`
readers that never run code, and torchvision -> jaxret backbone name mapping.

  model, variables = load_torchvision("resnet50-0676ba61.pth", "resnet50")
  logits = model.apply(variables, images, train=False)["logits"]  # images [B, 224, 224, 3]
"""
from jaxret.weights.imagenet_preprocessing import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval_transform
from jaxret.weights.load import (FLAX_ARCH_KEY, abstract_variables, load_backbone_variables,
                                 load_torchvision, read_variables)
from jaxret.weights.mismatch import WeightMismatchError
from jaxret.weights.pth import read_pth
from jaxret.weights.reader import read_checkpoint, read_npz
from jaxret.weights.safetensors_file import read_safetensors
from jaxret.weights.torch_unpickler import UnsafeCheckpointError
from jaxret.weights.torchvision_names import torchvision_to_flax

__all__ = ["FLAX_ARCH_KEY", "IMAGENET_MEAN", "IMAGENET_STD", "UnsafeCheckpointError",
           "WeightMismatchError", "abstract_variables", "imagenet_eval_transform",
           "load_backbone_variables", "load_torchvision", "read_checkpoint", "read_npz", "read_pth",
           "read_safetensors", "read_variables", "torchvision_to_flax"]
