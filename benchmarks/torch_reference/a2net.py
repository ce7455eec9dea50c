"""A2-Net in PyTorch (jaxret/methods/a2net.py): attention guidance and transform networks on res5,
tied encoder `V' = tanh(W x)`, and Eq. 13 against the database codes (+ ADSH's gamma term, also
weighed by beta), / (n m).

Same parameters as jaxret: `attention_kernel` [C_T, C] / `attention_bias`, `transform_local` and
`transform_global` (`project_kernel` [C_T, D], `project_bias`, `conv{i}` 3x3 convs), `encoder`
[k, d]. The database state (codes Z, labels, latest outputs, Omega membership) lives in buffers;
`loss` reads it and `after_step` records the batch in it, as jaxret's loss_fn does. The code
refresh every `state_update_every` steps (jaxret's `update_state`) is not part of the step.
"""
import math

import ml_collections
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference.batch_keys import require
from torch_reference.resnet import resnet

VARIANTS = {  # variant -> (attention features, Eq. 7 term, Eq. 8 term)
    "vanilla": (False, False, False), "attention": (True, False, False),
    "reconstruction": (True, True, False), "a2net": (True, True, True)}


class TransformNet(nn.Module):
  """phi (Eqs. 3-4): 1x1 projection to D, then `depth - 1` 3x3 convs, ReLU after each. With attention
  [B, C, H, W] it is phi_local on every `A^c (.) T` (the C maps of each image as one batch)."""

  def __init__(self, in_channels: int, features: int, depth: int):
    super().__init__()
    self.project_kernel = nn.Parameter(torch.randn(in_channels, features) / math.sqrt(in_channels))
    self.project_bias = nn.Parameter(torch.zeros(features))
    for i in range(depth - 1):  # layers, not parts: a fixed stack
      self.add_module(f"conv{i + 1}", nn.Conv2d(features, features, 3, padding=1))
    self.depth = depth

  def forward(self, t: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
    """T [B, C_T, H, W] (and attention [B, C, H, W]) -> [B, D, H, W] (phi_global) or [B, C, D, H, W]."""
    projected = torch.einsum("bthw,td->bhwd", t, self.project_kernel)
    if attention is None:
      y = projected + self.project_bias
    else:  # conv1x1(A^c (.) T) = A^c (.) (T K) + b
      y = torch.einsum("bhwd,bchw->bchwd", projected, attention) + self.project_bias
    batch_shape = y.shape[:-3]
    y = F.relu(y.reshape(-1, *y.shape[-3:]).permute(0, 3, 1, 2))  # [N, D, H, W] in channels-last memory
    for i in range(self.depth - 1):
      y = F.relu(getattr(self, f"conv{i + 1}")(y))
    return y.reshape(*batch_shape, *y.shape[-3:])


def balanced_dissimilarity(labels: torch.Tensor, database_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
  """ADSH's soft constraint (jaxret.losses.hashing): `-r`, r = similar / dissimilar (query, database)
  pairs, database rows with label -1 left out."""
  query_counts = torch.bincount(labels, minlength=num_classes).float()
  database_counts = torch.bincount(database_labels[database_labels >= 0], minlength=num_classes).float()
  similar = query_counts @ database_counts
  dissimilar = query_counts.sum() * database_counts.sum() - similar
  return -similar / dissimilar.clamp(min=1.0)


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    c = config.a2net
    self.bits, self.num_classes, self.gamma, self.similarity = c.bits, config.num_classes, c.gamma, c.similarity
    self.attention, self.reconstruction, self.decorrelation = VARIANTS[c.variant]
    self.lam, self.alpha_times_nk, self.beta = c.lam, c.alpha_times_nk, c.beta_times_k / c.bits
    self.backbone = resnet(config.backbone, config.backbone_width)
    c_t = self.backbone.stage_channels()["res5"]
    d = c_t
    if self.attention:
      num_attention = c.num_attention or c.bits
      self.attention_kernel = nn.Parameter(torch.randn(c_t, num_attention) / math.sqrt(c_t))
      self.attention_bias = nn.Parameter(torch.zeros(num_attention))
      self.transform_local = TransformNet(c_t, c.transform_dim, c.transform_depth)
      self.transform_global = TransformNet(c_t, c.transform_dim, c.transform_depth)
      d = (num_attention + 1) * c.transform_dim
    self.encoder = nn.Parameter(torch.randn(c.bits, d) / math.sqrt(d))
    m = config.num_train_examples
    if m < 1:
      raise ValueError(f"config.num_train_examples={m}: A2-Net keeps a code per training image")
    codes = torch.zeros(m, c.bits)
    if c.database_init == "random":
      codes = torch.where(torch.rand(m, c.bits) < 0.5, 1.0, -1.0)
    self.register_buffer("database_codes", codes)
    self.register_buffer("database_labels", torch.full((m,), -1, dtype=torch.int64))
    self.register_buffer("database_outputs", torch.zeros(m, c.bits))
    self.register_buffer("database_in_query", torch.zeros(m, dtype=torch.bool))
    self._seen = None  # (index, labels, codes) of the last loss, recorded by after_step

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"code": V' [B, k] (relaxed), "features": x [B, d]}."""
    t = self.backbone(images)["res5"]
    if self.attention:
      attention = torch.sigmoid(torch.einsum("bthw,tc->bchw", t, self.attention_kernel)
                                + self.attention_bias[:, None, None])  # Eq. 2
      local = self.transform_local(t, attention).mean(dim=(3, 4))  # x^c [B, C, D]
      global_ = self.transform_global(t).mean(dim=(2, 3))  # x_global [B, D]
      x = torch.cat([local.flatten(1), global_], dim=1)
    else:  # Table 2's vanilla backbone
      x = t.mean(dim=(2, 3))
    return {"code": torch.tanh(x @ self.encoder.T), "features": x}

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 13 / (n m) on a batch {"image", "label" [B], "index" [B] (position in the training set)}."""
    require(batch, ("image", "label", "index"), "a2net")
    outputs = self(batch["image"])
    x, codes, w = outputs["features"], outputs["code"], self.encoder
    index, labels = batch["index"], batch["label"]
    n, m = codes.shape[0], self.database_codes.shape[0]
    db_labels = self.database_labels.index_put((index,), labels)
    objective = torch.zeros((), device=codes.device)
    if self.reconstruction:  # Eq. 7
      objective = objective + ((x - codes @ w) ** 2).sum() + self.lam * ((x @ w.T - codes) ** 2).sum()
    if self.decorrelation:  # Eq. 8, alpha = alpha_times_nk / (n k)
      gram = codes.T @ codes - n * torch.eye(self.bits, device=codes.device)
      objective = objective + self.alpha_times_nk / (n * self.bits) * (gram ** 2).sum()
    dissimilar = -1.0 if self.similarity == "paper" else balanced_dissimilarity(labels, db_labels, self.num_classes)
    similarity = torch.where(labels[:, None] == db_labels[None, :], 1.0, dissimilar)
    pair = (codes @ self.database_codes.T - self.bits * similarity) ** 2
    objective = objective + self.beta * torch.where(db_labels[None, :] >= 0, pair, 0.0).sum()
    if self.gamma:  # beta weighs the quantisation term too (SEMICON's ADSH_Loss)
      objective = objective + self.beta * self.gamma * ((self.database_codes[index] - codes) ** 2).sum()
    self._seen = (index, labels, codes.detach())
    return objective / (n * m)

  @torch.no_grad()
  def after_step(self) -> None:
    """Records the last batch in the database state: its labels, outputs and membership of Omega."""
    if self._seen is None:
      return
    index, labels, codes = self._seen
    self.database_labels[index] = labels
    self.database_outputs[index] = codes
    self.database_in_query[index] = True
    self._seen = None
