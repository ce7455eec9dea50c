"""A3M in PyTorch (jaxret/methods/a3m.py): category and K attribute branches on res5, attribute- and
category-guided attention, `L_add + alpha L_category + beta mean_k L^(k)` (Eq. 11).

Same parameters and names as jaxret: `category_conv` (1x1, bias), optional `category_norm`,
`attribute_branches` (one `[K, C, d]` kernel; linear: projection of the pooled map),
`category_classifier`, optional `embedding`, `classifier`, `attribute_classifiers` (one padded
`[K, d, max_values]` kernel), the BatchNorms of `branch = "batchnorm_relu"` (after the convs and
after pooling) and of `attention_norm = "batchnorm"`; `attention_norm = "scale"` divides the scores
by sqrt(d).
"""
import math

import ml_collections
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference.batch_keys import require
from torch_reference.resnet import resnet, stage_size

INVALID_LOGIT = -1e9  # a padded attribute value: softmax probability 0


def lecun_normal_(kernel: torch.Tensor, fan_in: int) -> torch.Tensor:
  """Flax's lecun_normal scale (std 1 / sqrt(fan_in)) for einsum kernels."""
  return nn.init.normal_(kernel, 0.0, 1.0 / math.sqrt(fan_in))


def num_attributes(config: ml_collections.ConfigDict) -> int:
  """K: the dataset's attributes, or `a3m.num_latent_attributes` without attribute labels."""
  if not config.a3m.use_attribute_labels and config.a3m.num_latent_attributes:
    return config.a3m.num_latent_attributes
  return len(config.attribute_sizes)


def mean_attribute_loss(attribute_losses: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
  """Eq. 11's mean over the attributes some example of the batch knows: [K], labels [B, K] -> scalar."""
  known = (labels >= 0).any(dim=0)
  return (attribute_losses * known).sum() / known.sum().clamp(min=1)


def attribute_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
  """Eq. 4 per attribute over the examples that know it: logits [B, K, V], labels [B, K] (-1
  unknown) -> [K] (0 where no example knows attribute k)."""
  ce = F.cross_entropy(logits.permute(0, 2, 1), labels, ignore_index=-1, reduction="none")  # [B, K], 0 if unknown
  return ce.sum(dim=0) / (labels >= 0).sum(dim=0).clamp(min=1)


class AttributeBranches(nn.Module):
  """The K attribute branches (1x1 conv to d [, BatchNorm, ReLU], average pooling) as one einsum with
  a `[K, C, d]` kernel: res5 [B, C, H, W] -> A [B, K, d]. Linear branches project the pooled map."""

  def __init__(self, num_attributes: int, channels: int, features: int, batchnorm_relu: bool):
    super().__init__()
    self.kernel = nn.Parameter(lecun_normal_(torch.empty(num_attributes, channels, features), channels))
    self.bias = nn.Parameter(torch.zeros(num_attributes, features))
    self.norm = nn.BatchNorm2d(num_attributes * features) if batchnorm_relu else None
    self.pool_norm = nn.BatchNorm1d(num_attributes * features) if batchnorm_relu else None

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.norm is None:  # conv and pooling are linear: project the pooled map
      return torch.einsum("bc,kcd->bkd", x.mean(dim=(2, 3)), self.kernel) + self.bias
    b, _, h, w = x.shape
    k, d = self.bias.shape
    y = torch.einsum("bchw,kcd->bkdhw", x, self.kernel) + self.bias[:, :, None, None]
    y = F.relu(self.norm(y.reshape(b, k * d, h, w)))
    return F.relu(self.pool_norm(y.mean(dim=(2, 3)))).reshape(b, k, d)


class AttributeClassifiers(nn.Module):
  """One FC per attribute over its values, as one padded `[K, d, max_values]` kernel: A [B, K, d] ->
  logits [B, K, max_values], the values an attribute does not have set to -1e9."""

  def __init__(self, attribute_sizes: tuple[int, ...], features: int):
    super().__init__()
    k, width = len(attribute_sizes), max(attribute_sizes)
    self.kernel = nn.Parameter(lecun_normal_(torch.empty(k, features, width), features))
    self.bias = nn.Parameter(torch.zeros(k, width))
    self.register_buffer("valid", torch.arange(width)[None, :] < torch.tensor(attribute_sizes)[:, None])

  def forward(self, a: torch.Tensor) -> torch.Tensor:
    logits = torch.einsum("bkd,kdv->bkv", a, self.kernel) + self.bias
    return logits.masked_fill(~self.valid, INVALID_LOGIT)


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    a3m = config.a3m
    self.variant, self.attention_norm, self.branch = a3m.variant, a3m.attention_norm, a3m.branch
    self.alpha, self.beta, self.use_attribute_labels = a3m.alpha, a3m.beta, a3m.use_attribute_labels
    d, k = a3m.feature_dim, num_attributes(config)
    self.backbone = resnet(config.backbone, config.backbone_width)
    c5 = self.backbone.stage_channels()["res5"]
    self.category_conv = nn.Conv2d(c5, d, 1)
    if self.branch == "batchnorm_relu":
      self.category_norm = nn.BatchNorm2d(d)
      self.category_pool_norm = nn.BatchNorm1d(d)
    self.category_classifier = nn.Linear(d, config.num_classes)
    self.attribute_branches = AttributeBranches(k, c5, d, self.branch == "batchnorm_relu")
    if self.attention_norm == "batchnorm":
      regions = stage_size(config.image_height or config.image_size, "res5") * stage_size(config.image_size, "res5")
      self.region_attention_norm = nn.BatchNorm1d(regions)
      self.attribute_attention_norm = nn.BatchNorm1d(k)
    self.embedding = nn.Linear(d, config.embedding_dim) if config.embedding_dim else None
    self.classifier = nn.Linear(config.embedding_dim or d, config.num_classes)
    if self.use_attribute_labels:
      self.attribute_classifiers = AttributeClassifiers(tuple(config.attribute_sizes), d)

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"embedding" [B, D], "logits" [B, classes] (L_add), "category_logits",
    "attribute_logits" [B, K, max_values] (with attribute labels)}."""
    res5 = self.backbone(images)["res5"]
    b = res5.shape[0]
    v = self.category_conv(res5)
    if self.branch == "batchnorm_relu":
      v = F.relu(self.category_norm(v))
    v = v.flatten(2).transpose(1, 2)  # V [B, L, d]
    v_cat = v.mean(dim=1)
    if self.branch == "batchnorm_relu":
      v_cat = F.relu(self.category_pool_norm(v_cat))
    a = self.attribute_branches(res5)  # A [B, K, d]
    scores, attribute_scores = torch.einsum("bld,bkd->bkl", v, a), torch.einsum("bkd,bd->bk", a, v_cat)
    if self.attention_norm == "scale":
      scores, attribute_scores = scores / math.sqrt(v.shape[2]), attribute_scores / math.sqrt(v.shape[2])
    if self.variant in ("baseline2", "att2"):
      m_region = torch.ones(b, v.shape[1], device=v.device)
    elif self.attention_norm == "batchnorm":
      m_region = torch.sigmoid(self.region_attention_norm(scores.mean(dim=1)))
    else:
      m_region = torch.sigmoid(scores).amax(dim=1)  # Eq. 5, max over k
    if self.variant in ("baseline2", "att1"):
      s_attr = torch.ones(b, a.shape[1], device=a.device)
    elif self.attention_norm == "batchnorm":
      s_attr = torch.sigmoid(self.attribute_attention_norm(attribute_scores))
    else:
      s_attr = torch.sigmoid(attribute_scores)  # Eq. 7
    f_region = torch.einsum("bld,bl->bd", v, m_region) / v.shape[1]  # Eq. 6
    f_attr = torch.einsum("bkd,bk->bd", a, s_attr) / a.shape[1]  # Eq. 8
    embedding = f_region + f_attr
    if self.embedding is not None:
      embedding = self.embedding(embedding)
    outputs = {"embedding": embedding, "logits": self.classifier(embedding),
               "category_logits": self.category_classifier(v_cat)}
    if self.use_attribute_labels:
      outputs["attribute_logits"] = self.attribute_classifiers(a)
    return outputs

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 11 on a batch {"image", "label" [B], "attributes" [B, K] (-1 unknown; with attribute labels)}."""
    require(batch, ("image", "label", "attributes") if self.use_attribute_labels else ("image", "label"), "a3m")
    outputs = self(batch["image"])
    labels = batch["label"]
    loss = F.cross_entropy(outputs["logits"], labels) + self.alpha * F.cross_entropy(outputs["category_logits"], labels)
    if self.use_attribute_labels:
      attribute_losses = attribute_cross_entropy(outputs["attribute_logits"], batch["attributes"])
      loss = loss + self.beta * mean_attribute_loss(attribute_losses, batch["attributes"])
    return loss

  def after_step(self) -> None:
    """Nothing outside the gradient but BatchNorm statistics (updated by the forward pass)."""
