"""PyTorch references of jaxret's methods, timed against them by benchmarks/train_step.py.

Each `<method>.Model(config)` mirrors jaxret/methods/<method>.py (same layers, sizes and, under
torchvision's naming, parameter names) built from the same ml_collections config (with the keys the
train loop fills: num_classes, attribute_sizes, num_train_examples), with `loss(batch) -> scalar`
(the method's full training loss, equal to jaxret's loss_fn at the same parameters) and
`after_step()` (per-step state updates jaxret makes inside its train step: VAPNet's EMA, A2-Net's
database record; call it after `loss.backward()`, before `optimizer.step()` for jaxret's exact
EMA). State kept outside the gradient (BatchNorm statistics, EMA encoders, database codes) is in
buffers. Float32; the harness may wrap the step in `torch.autocast`.

  model = torch_reference.build(config)  # training mode, channels-last
  loss = model.loss(torch_reference.to_torch(numpy_batch))
  loss.backward(); model.after_step(); optimizer.step()

benchmarks/ is not a package: put benchmarks/ on sys.path and `import torch_reference`.
"""
import importlib

import ml_collections
import numpy as np
import torch
from torch import nn

METHODS = ("baseline", "a3m", "midattr", "a2net", "vapnet", "deml")


def build(config: ml_collections.ConfigDict) -> nn.Module:
  """The reference `Model` of `config.method`, in training mode, channels-last."""
  if config.method not in METHODS:
    raise ValueError(f"config.method={config.method!r}: the PyTorch reference has {METHODS}")
  module = importlib.import_module(f"torch_reference.{config.method}")
  return module.Model(config).train().to(memory_format=torch.channels_last)


def to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
  """A jaxret batch as torch tensors: "image" float32 [B, H, W, 3] -> [B, 3, H, W] in
  channels-last memory (no copy for a contiguous NHWC array); integer arrays ("label",
  "attributes" [B, K] with -1 unknown, "index", ...) -> int64; others as they are."""
  if "image" not in batch:
    raise ValueError(f"to_torch: batch has keys {sorted(batch)}; expected an 'image' [B, H, W, 3]")
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    if key == "image":
      if value.ndim != 4 or value.shape[-1] != 3:
        raise ValueError(f"to_torch: batch['image'] has shape {value.shape}; expected [B, H, W, 3] (NHWC)")
      image = torch.from_numpy(np.ascontiguousarray(value, np.float32)).permute(0, 3, 1, 2)
      out[key] = image.contiguous(memory_format=torch.channels_last)
    elif np.issubdtype(value.dtype, np.integer):
      out[key] = torch.from_numpy(value.astype(np.int64))
    else:
      out[key] = torch.from_numpy(np.ascontiguousarray(value))
  return out
