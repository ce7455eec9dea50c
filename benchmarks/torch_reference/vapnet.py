"""VAPNet in PyTorch (jaxret/methods/vapnet.py): the retrieval module (GAP [+ embedding FC] +
classifier, CE `L_a`) and, in training, M local views per image through the same backbone (with
`view_statistics = "own"` as a BatchNorm batch of their own, tracked in the parameter-free
`backbone_views`, jaxret's `batch_stats/backbone_views`; "shared": one call with the images), RoIAlign of the image's map at the views' boxes, encoders T_L / T_G, and the KL consistency
against the mean encoders: `L_a + lambda L_c_hat` (Eq. 9; the variants of Table 1).

Same parameters as jaxret (`embedding` when embedding_dim > 0, `classifier`, `encoder_local`,
`encoder_global`). The mean encoders E[T_L], E[T_G] are buffers; `after_step` applies Eq. 7,
`E_t = (1 - a) E_{t-1} + a theta_t` (call it after `backward`, before `optimizer.step()`, for
jaxret's theta_t = the parameters of the step's forward pass).
"""
import copy

import ml_collections
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference.batch_keys import require
from torch_reference.local_views import crop_and_resize, grid_patch_boxes, sample_patches
from torch_reference.resnet import resnet
from torch_reference.roi_align import roi_align


def softmax_kl(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
  """KL(softmax(target) || softmax(logits)) over the last axis: [..., k] -> [...]."""
  log_p, log_q = F.log_softmax(target_logits, dim=-1), F.log_softmax(logits, dim=-1)
  return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


class Model(nn.Module):

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    v = config.vapnet
    self.variant, self.weight, self.ema_ratio = v.variant, v.weight, v.ema_ratio
    self.num_views, self.roi_size, self.sampling_ratio = v.num_views, v.roi_size, v.sampling_ratio
    self.uses_views = v.variant != "aux_only"
    self.uses_mean_encoders = v.variant in ("full", "consistency_only")
    self.backbone = resnet(config.backbone, config.backbone_width)
    self.backbone_views = None
    if self.uses_views and v.view_statistics == "own":  # the backbone's BatchNorm buffers alone
      self.backbone_views = copy.deepcopy(self.backbone)
      for module in self.backbone_views.modules():
        for name, _ in list(module.named_parameters(recurse=False)):
          setattr(module, name, None)
    c5 = self.backbone.stage_channels()["res5"]
    self.embedding = nn.Linear(c5, config.embedding_dim) if config.embedding_dim else None
    self.classifier = nn.Linear(config.embedding_dim or c5, config.num_classes)
    if self.uses_views:
      height = config.image_height or config.image_size
      self.register_buffer("candidate_boxes", grid_patch_boxes(height, config.image_size, tuple(v.grids)))
      if not 1 <= v.num_views <= len(self.candidate_boxes):
        raise ValueError(f"config.vapnet.num_views={v.num_views}: expected 1 <= M <= {len(self.candidate_boxes)}")
      self.encoder_local = nn.Linear(c5, v.attribute_dim)
      self.encoder_global = nn.Linear(c5, v.attribute_dim)
    if self.uses_mean_encoders:  # E[T_L], E[T_G], initialised to the encoders (Eq. 7)
      for name in ("local", "global"):
        encoder = getattr(self, f"encoder_{name}")
        self.register_buffer(f"mean_{name}_weight", encoder.weight.detach().clone())
        self.register_buffer(f"mean_{name}_bias", encoder.bias.detach().clone())

  def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, 3, H, W] -> {"embedding" [B, D], "logits" [B, classes]}; in training with views also
    "local_features" g(F_L^i), "roi_features" g(F_G^i) [B, M, C], "attributes_local" A_L^i and
    "attributes_global" A_G^i [B, M, k]."""
    b, _, h, w = images.shape
    with_views = self.training and self.uses_views
    if with_views:
      boxes = self.candidate_boxes[sample_patches(b, self.num_views, len(self.candidate_boxes), images.device)]
      views = crop_and_resize(images, boxes, (h, w))  # [B, M, 3, H, W]
      views = views.reshape(-1, *views.shape[2:]).contiguous(memory_format=torch.channels_last)
    if with_views and self.backbone_views is None:  # "shared": one BatchNorm batch of B (1 + M)
      res5 = self.backbone(torch.cat([images, views]))["res5"]
      feature_map, view_maps = res5[:b], res5[b:]
    else:
      feature_map = self.backbone(images)["res5"]  # F
      if with_views:  # the backbone's parameters, backbone_views' statistics (updated in place)
        variables = {**dict(self.backbone.named_parameters()), **dict(self.backbone_views.named_buffers())}
        view_maps = torch.func.functional_call(self.backbone, variables, (views,))["res5"]
    embedding = feature_map.mean(dim=(2, 3))
    if self.embedding is not None:
      embedding = self.embedding(embedding)
    outputs = {"embedding": embedding, "logits": self.classifier(embedding)}
    if with_views:
      local = view_maps.mean(dim=(2, 3)).reshape(b, self.num_views, -1)  # Eq. 1
      scale = (feature_map.shape[2] / h, feature_map.shape[3] / w)
      rois = roi_align(feature_map, boxes, (self.roi_size, self.roi_size), scale, self.sampling_ratio)
      outputs["local_features"], outputs["roi_features"] = local, rois.mean(dim=(3, 4))
      outputs["attributes_local"] = self.encoder_local(local)  # Eq. 2
      outputs["attributes_global"] = self.encoder_global(outputs["roi_features"])  # Eq. 3
    return outputs

  def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 9 (or the variant's terms) on a batch {"image", "label" [B]}; the views are drawn with torch's RNG."""
    require(batch, ("image", "label"), "vapnet")
    outputs = self(batch["image"])
    loss_aux = F.cross_entropy(outputs["logits"], batch["label"])  # Eq. 8
    if not self.uses_views:
      return loss_aux
    if self.uses_mean_encoders:  # Eq. 6: targets from E[T_G], E[T_L] (no gradient into them)
      targets_local = F.linear(outputs["local_features"], self.mean_global_weight, self.mean_global_bias)
      targets_global = F.linear(outputs["roi_features"], self.mean_local_weight, self.mean_local_bias)
    else:  # Eq. 5: targets from the trained encoders
      targets_local = self.encoder_global(outputs["local_features"])
      targets_global = self.encoder_local(outputs["roi_features"])
    per_view = (softmax_kl(targets_local, outputs["attributes_local"])
                + softmax_kl(targets_global, outputs["attributes_global"]))  # [B, M]
    loss = self.weight * per_view.sum(dim=1).mean()
    return loss if self.variant == "consistency_only" else loss_aux + loss

  @torch.no_grad()
  def after_step(self) -> None:
    """Eq. 7 on the mean encoders: `E <- (1 - a) E + a theta`."""
    if not self.uses_mean_encoders:
      return
    for name in ("local", "global"):
      encoder = getattr(self, f"encoder_{name}")
      getattr(self, f"mean_{name}_weight").lerp_(encoder.weight, self.ema_ratio)
      getattr(self, f"mean_{name}_bias").lerp_(encoder.bias, self.ema_ratio)
