"""Baseline in PyTorch (jaxret/methods/baseline.py): backbone (a ResNet or MobileNetV2) + GAP + embedding
FC + classifier, cross-entropy."""
import ml_collections
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference.batch_keys import require
from torch_reference.mobilenet_v2 import MobileNetV2
from torch_reference.resnet import resnet


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    if config.backbone == "mobilenet_v2":
      self.backbone = MobileNetV2(config.backbone_width)
    else:
      self.backbone = resnet(config.backbone, config.backbone_width)
    self.embedding = nn.Linear(self.backbone.stage_channels()["res5"], config.embedding_dim)
    self.classifier = nn.Linear(config.embedding_dim, config.num_classes)

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"embedding": [B, D], "logits": [B, classes]}."""
    pooled = self.backbone(images)["res5"].mean(dim=(2, 3))
    embedding = self.embedding(pooled)
    return {"embedding": embedding, "logits": self.classifier(embedding)}

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Softmax cross-entropy over the training classes: batch {"image", "label" [B]} -> scalar."""
    require(batch, ("image", "label"), "baseline")
    return F.cross_entropy(self(batch["image"])["logits"], batch["label"])

  def after_step(self) -> None:
    """Nothing outside the gradient but BatchNorm statistics (updated by the forward pass)."""
