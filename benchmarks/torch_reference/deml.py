"""DeML in PyTorch (jaxret/methods/deml.py): I scales (each the crop-zoom of the previous one around its
random-walk object attention), J channel-attention branches per scale through one shared backbone
split into FNet / GNet, J linear learners per scale; loss = binomial deviance per learner (Eq. 5) +
activation decay + L_ntri (Eq. 6) + the diversity term (Eq. 4 adversary behind gradient reversal,
or the public code's hinge), summed over scales.

Same parameters as jaxret: the backbone, `cam_{i}` (`squeeze` [J, C, 64], `excite` [J, 64, C]),
`learners_{i}` (`kernel` [C5, d] shared by the J learners, no bias; with `tied_learners = False`
`kernel` [J, C5, d], `bias` [J, d]) and, with `adversary = "grl"`, `adversary_{i}`
(`hidden`, `out`: Dense - ReLU - Dense). Scale i > 0 runs the backbone with BatchNorm statistics of its
own, `backbone_zoom{i}` (only the backbone's BatchNorm buffers, same names), as jaxret's
`per_scale_batch_stats`.
"""
import math

import ml_collections
import torch
from torch.func import functional_call
import torch.nn.functional as F
from torch import nn

from torch_reference.batch_keys import require
from torch_reference.crop_zoom import attend_and_zoom
from torch_reference.random_walk import object_attention
from torch_reference.resnet import STAGES, resnet


class GradReverse(torch.autograd.Function):
  """The identity forward; the gradient times `-scale` backward."""

  @staticmethod
  def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
    ctx.scale = scale
    return x.view_as(x)

  @staticmethod
  def backward(ctx, grad: torch.Tensor):
    return -ctx.scale * grad, None


class ChannelAttention(nn.Module):
  """J CAMs as einsums: U [B, C, H, W] -> cap [J, B, C, H, W], `cap_j = U * sigmoid(W2_j relu(W1_j GAP(U)))`."""

  def __init__(self, num_branches: int, channels: int, hidden: int):
    super().__init__()
    self.squeeze = nn.Parameter(torch.randn(num_branches, channels, hidden) / math.sqrt(channels))
    self.excite = nn.Parameter(torch.randn(num_branches, hidden, channels) / math.sqrt(hidden))

  def forward(self, u: torch.Tensor) -> torch.Tensor:
    pooled = u.mean(dim=(2, 3))  # [B, C]
    weights = torch.sigmoid(torch.einsum("jbh,jhc->jbc", F.relu(torch.einsum("bc,jch->jbh", pooled, self.squeeze)),
                                         self.excite))
    return u[None] * weights[:, :, :, None, None]


class Learners(nn.Module):
  """J linear learners as one einsum: pooled [J, B, C] -> [B, J, d]; tied: one kernel [C, d], no bias."""

  def __init__(self, num_branches: int, channels: int, features: int, tied: bool = True):
    super().__init__()
    self.tied, self.num_branches = tied, num_branches
    if tied:
      self.kernel = nn.Parameter(torch.randn(channels, features) / math.sqrt(channels))
    else:
      self.kernel = nn.Parameter(torch.randn(num_branches, channels, features) / math.sqrt(channels))
      self.bias = nn.Parameter(torch.zeros(num_branches, features))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.tied:
      return torch.einsum("jbc,cd->bjd", x, self.kernel)
    return torch.einsum("jbc,jcd->bjd", x, self.kernel) + self.bias

  def kernels(self) -> torch.Tensor:
    """`w_ij^T` of the J learners: [J, C, d]."""
    return self.kernel.expand(self.num_branches, -1, -1) if self.tied else self.kernel


class Adversary(nn.Module):
  """F^i of Eq. 4, shared by a scale's J learners: [B, J, d] -> [B, J, features]."""

  def __init__(self, in_features: int, features: int):
    super().__init__()
    self.hidden = nn.Linear(in_features, features)
    self.out = nn.Linear(features, features)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.out(F.relu(self.hidden(x)))


def batchnorm_statistics(module: nn.Module) -> nn.Module:
  """A module tree with `module`'s BatchNorm layers only, under the same names, without affine
  parameters: a second set of running statistics for the same backbone."""
  if isinstance(module, nn.BatchNorm2d):
    return nn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum, affine=False)
  out = nn.Module()
  for name, child in module.named_children():
    if any(isinstance(m, nn.BatchNorm2d) for m in child.modules()):
      out.add_module(name, batchnorm_statistics(child))
  return out


def unit(x: torch.Tensor) -> torch.Tensor:
  """L2-normalised over the last axis (eps 1e-12, as jaxret)."""
  return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def binomial_deviance(learners: torch.Tensor, labels: torch.Tensor, deml: ml_collections.ConfigDict) -> torch.Tensor:
  """Eq. 5 for every learner at once: learners [B, L, d], labels [B] -> [L] (mean positive-pair
  cost + mean negative-pair cost on cosine similarity; self-pairs left out)."""
  x = unit(learners.transpose(0, 1))  # [L, B, d]
  similarity = x @ x.transpose(1, 2)  # [L, B, B]
  same = labels[:, None] == labels[None, :]
  positive = same & ~torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
  sign = torch.where(same, 1.0, -1.0)
  gamma = torch.where(same, deml.positive_cost, deml.negative_cost)
  cost = F.softplus(-sign * deml.alpha * (similarity - deml.beta) * gamma)
  mean_over = lambda mask: (cost * mask).sum(dim=(1, 2)) / mask.sum().clamp(min=1)
  return mean_over(positive) + mean_over(~same)


def pairwise_squared_distance(x: torch.Tensor) -> torch.Tensor:
  """[..., J, d] -> [..., J, J]."""
  return (x[..., :, None, :] - x[..., None, :, :]).square().sum(dim=-1)


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    deml = config.deml
    self.deml = deml
    self.num_scales, self.num_branches = deml.num_scales, deml.num_branches
    self.split, self.gnet_start = deml.split, STAGES[STAGES.index(deml.split) + 1]
    self.attention_layers = tuple(deml.attention_layers)
    self.backbone = resnet(config.backbone, config.backbone_width)
    channels = self.backbone.stage_channels()
    d = config.embedding_dim // (deml.num_scales * deml.num_branches)
    if d < 1:
      raise ValueError(f"config.embedding_dim={config.embedding_dim}: expected at least I x J = "
                       f"{deml.num_scales * deml.num_branches}")
    for i in range(1, self.num_scales if deml.per_scale_batch_stats else 1):
      self.add_module(f"backbone_zoom{i}", batchnorm_statistics(self.backbone))
    for i in range(self.num_scales):
      self.add_module(f"cam_{i}", ChannelAttention(self.num_branches, channels[self.split], deml.cam_hidden))
      self.add_module(f"learners_{i}", Learners(self.num_branches, channels["res5"], d, deml.tied_learners))
      if deml.adversary == "grl":
        self.add_module(f"adversary_{i}", Adversary(d, deml.adversary_dim))

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"embedding" [B, I J d], "learners" [B, I, J, d], "adversary" [B, I, J, k] (grl)}."""
    b, _, h, w = images.shape
    x, learners, adversaries = images, [], []
    for i in range(self.num_scales):  # sequential: each scale's input is cropped by the previous one
      backbone = self.backbone
      if hasattr(self, f"backbone_zoom{i}"):  # scale i's running statistics (updated in place)
        stats = dict(getattr(self, f"backbone_zoom{i}").named_buffers())
        backbone = lambda x, stats=stats, **stages: functional_call(self.backbone, stats, (x,), stages)
      u = backbone(x, stop=self.split)[self.split]  # FNet^i
      caps = getattr(self, f"cam_{i}")(u)
      caps = caps.reshape(-1, *u.shape[1:]).contiguous(memory_format=torch.channels_last)
      maps = backbone(caps, start=self.gnet_start)  # GNet^i, one batch for the J branches
      pooled = maps["res5"].mean(dim=(2, 3)).reshape(self.num_branches, b, -1)
      ca = getattr(self, f"learners_{i}")(pooled)
      learners.append(ca)
      if self.deml.adversary == "grl":
        adversary_input = unit(ca) if self.deml.adversary_input == "unit" else ca
        adversaries.append(getattr(self, f"adversary_{i}")(GradReverse.apply(adversary_input, self.deml.grl_scale)))
      if i + 1 < self.num_scales:
        attention = object_attention([maps[name] for name in self.attention_layers], (h, w), self.deml.walk_steps)
        x, _ = attend_and_zoom(x, attention.reshape(self.num_branches, b, h, w).mean(dim=0))
    learners = torch.stack(learners, dim=1)
    outputs = {"embedding": unit(learners).flatten(1), "learners": learners}
    if adversaries:
      outputs["adversary"] = torch.stack(adversaries, dim=1)
    return outputs

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eqs. 4-6 on a batch {"image", "label" [B]} (P x K sampled, so every image has positives)."""
    require(batch, ("image", "label"), "deml")
    deml = self.deml
    outputs = self(batch["image"])
    learners = outputs["learners"]  # [B, I, J, d]
    b, num_scales, num_branches, d = learners.shape
    flat = learners.reshape(b, num_scales * num_branches, d)
    loss = binomial_deviance(flat, batch["label"], deml).mean()  # Eq. 5
    loss = loss + deml.lambda1 / (2 * flat.shape[1] * b) * flat.square().sum()  # activation decay
    kernels = torch.cat([getattr(self, f"learners_{i}").kernels() for i in range(num_scales)])  # [I J, C, d]
    loss = loss + deml.lambda2 * (kernels.square().sum(dim=1) - 1.0).square().sum()  # L_ntri
    if num_branches > 1 and deml.adversary == "grl":  # Eq. 4, summed over scales
      loss = loss + deml.lambda0 * pairwise_squared_distance(outputs["adversary"]).sum(dim=(-2, -1)).mean(dim=0).sum()
    elif num_branches > 1 and deml.adversary == "hinge":
      distance = pairwise_squared_distance(unit(learners)).clamp(min=1e-12).sqrt()  # [B, I, J, J]
      hinge = (deml.hinge_margin - distance).clamp(min=0).square() / 2
      pairs = torch.ones(num_branches, num_branches, device=hinge.device).triu(diagonal=1)  # j < j'
      per_scale = (hinge * pairs).sum(dim=(0, 2, 3)) / b  # one ContrastiveLoss per pair (public code)
      loss = loss + deml.hinge_weight * per_scale.sum()
    return loss

  def after_step(self) -> None:
    """Nothing outside the gradient but BatchNorm statistics (updated by the forward pass)."""
