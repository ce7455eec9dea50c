"""Mid-level attributes + part branch in PyTorch (jaxret/methods/midattr.py), Eq. 3:
`mu L_global + nu L_local + attribute_weight sum_k L_att_k`.

Same parameters and names as jaxret: the backbone, `global_classifier`; the part branch's copy of
the last stage (`part_stage`, initialised from the backbone's with `part_init = "copy"`),
`part_reduction` (the 1x1 conv on the S stripes, an FC) and `part_classifier`;
`attribute_classifiers`, the attribute FCs over routed parts as one `[K, P, C, max_values]` kernel.
"""
import collections
import copy
import math

import ml_collections
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference.a3m import INVALID_LOGIT, attribute_cross_entropy
from torch_reference.batch_keys import require
from torch_reference.horizontal_pooling import horizontal_average_pool, horizontal_max_pool
from torch_reference.resnet import make_stage, resnet, stage_size


def routing_matrix(attribute_parts, num_parts: int) -> torch.Tensor:
  """Table 1 as data: bool [K, P], True where attribute k is predicted from part p."""
  routing = torch.zeros(len(attribute_parts), num_parts, dtype=torch.bool)
  for k, (_, parts) in enumerate(attribute_parts):  # config data, at build time
    routing[k, list(parts)] = True
  return routing


class PartAttributeClassifiers(nn.Module):
  """The K attribute FCs over their routed parts as one einsum whose `[K, P, C, max_values]` kernel
  is zero on the parts an attribute is not assigned to: parts [B, P, C] -> logits [B, K, max_values]
  (the values an attribute does not have set to -1e9)."""

  def __init__(self, attribute_sizes: tuple[int, ...], routing: torch.Tensor, channels: int):
    super().__init__()
    (k, p), width = routing.shape, max(attribute_sizes)
    self.kernel = nn.Parameter(torch.randn(k, p, channels, width) / math.sqrt(p * channels))
    self.bias = nn.Parameter(torch.zeros(k, width))
    self.register_buffer("routing", routing)
    self.register_buffer("valid", torch.arange(width)[None, :] < torch.tensor(attribute_sizes)[:, None])

  def forward(self, parts: torch.Tensor) -> torch.Tensor:
    kernel = self.kernel * self.routing[:, :, None, None]
    logits = torch.einsum("bpc,kpcv->bkv", parts, kernel) + self.bias
    return logits.masked_fill(~self.valid, INVALID_LOGIT)


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    m = config.midattr
    self.branches, self.attribute_layer, self.num_parts = m.branches, m.attribute_layer, m.num_parts
    self.mu, self.nu, self.attribute_weight = m.mu, m.nu, m.attribute_weight
    self.backbone = resnet(config.backbone, config.backbone_width)
    channels = self.backbone.stage_channels()
    c5, classes = channels["res5"], config.num_classes
    if self.branches in ("both", "global"):
      self.global_classifier = nn.Linear(c5, classes)
    if self.branches in ("both", "part"):  # blocks named as jaxret's part_stage (layer4_0, ...)
      last = len(self.backbone.stage_sizes)
      stage = (copy.deepcopy(getattr(self.backbone, f"layer{last}")) if m.part_init == "copy" else
               make_stage(self.backbone.block, channels["res4"], self.backbone.width * 2**(last - 1),
                          self.backbone.stage_sizes[-1], 2))
      self.part_stage = nn.Sequential(collections.OrderedDict(
          (f"layer{last}_{b}", block) for b, block in enumerate(stage)))
      self.part_stripes = m.part_stripes or stage_size(config.image_height or config.image_size, "res5")
      self.part_reduction = nn.Linear(c5, m.part_dim)
      self.part_classifier = nn.Linear(self.part_stripes * m.part_dim, classes)
    self.dropout = nn.Dropout(m.dropout)
    if self.attribute_layer != "none":
      self.attribute_classifiers = PartAttributeClassifiers(
          tuple(config.attribute_sizes), routing_matrix(m.attribute_parts, m.num_parts), channels[self.attribute_layer])

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"global_logits" [B, n] (global branch), "part_logits" [B, n] (part
    branch), "attribute_logits" [B, K, max_values] (attribute heads)}."""
    stages = self.backbone(images)
    outputs = {}
    if self.branches in ("both", "global"):
      pool5 = stages["res5"].mean(dim=(2, 3))
      outputs["global_logits"] = self.global_classifier(self.dropout(pool5))
    if self.branches in ("both", "part"):
      pooled = horizontal_average_pool(self.part_stage(stages["res4"]), self.part_stripes)  # pool5_1 [B, S, C5]
      reduced = self.part_reduction(pooled).flatten(1)  # the shared 1x1 conv, [B, S d]
      outputs["part_logits"] = self.part_classifier(self.dropout(reduced))
    if self.attribute_layer != "none":
      parts = horizontal_max_pool(stages[self.attribute_layer], self.num_parts)  # [B, P, C]
      outputs["attribute_logits"] = self.attribute_classifiers(parts)
    return outputs

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 3 on a batch {"image", "label" [B], "attributes" [B, K] (-1 unknown; with attribute heads)}."""
    require(batch, ("image", "label") if self.attribute_layer == "none" else ("image", "label", "attributes"),
            "midattr")
    outputs = self(batch["image"])
    labels = batch["label"]
    loss = torch.zeros((), device=labels.device)
    if "global_logits" in outputs:
      loss = loss + self.mu * F.cross_entropy(outputs["global_logits"], labels)
    if "part_logits" in outputs:
      loss = loss + self.nu * F.cross_entropy(outputs["part_logits"], labels)
    if "attribute_logits" in outputs:
      loss = loss + self.attribute_weight * attribute_cross_entropy(outputs["attribute_logits"],
                                                                    batch["attributes"]).sum()
    return loss

  def after_step(self) -> None:
    """Nothing outside the gradient but BatchNorm statistics (updated by the forward pass)."""
