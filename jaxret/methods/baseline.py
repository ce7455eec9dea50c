"""Baseline: backbone + global average pooling + embedding layer + classifier, cross-entropy.

The plain classification-trained embedding every paper compares against (A3M's Baseline-1).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxret.backbones import get_backbone
from jaxret.methods import Method, flax_model


class Model(nn.Module):
  backbone: str
  backbone_width: float
  embedding_dim: int
  num_classes: int
  frozen_batch_norm: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> dict:
    """images `[B, H, W, 3]` -> {"embedding": `[B, D]` (D = embedding_dim, or the backbone's width when
    0), "logits": `[B, classes]`} (float32)."""
    # frozen_batch_norm: the backbone normalises with its (pretrained) running statistics in
    # training too and never updates them; its weights still train.
    features = get_backbone(self.backbone, width_multiplier=self.backbone_width, dtype=self.dtype,
                            name="backbone")(images, train=train and not self.frozen_batch_norm)
    pooled = jnp.mean(features["res5"], axis=(1, 2))
    # embedding_dim 0: the pooled features themselves (a pretrained backbone's starting point as is)
    embedding = pooled
    if self.embedding_dim:
      embedding = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(pooled)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(embedding)
    return {"embedding": embedding.astype(jnp.float32), "logits": logits.astype(jnp.float32)}


def make_model(config: ml_collections.ConfigDict) -> Model:
  return Model(backbone=config.backbone, backbone_width=config.backbone_width,
               embedding_dim=config.embedding_dim, num_classes=config.num_classes,
               frozen_batch_norm=config.get("frozen_batch_norm", False), dtype=jnp.dtype(config.compute_dtype))


def loss_fn(params, method_state, batch: dict, rng: jax.Array, config: ml_collections.ConfigDict):
  """Softmax cross-entropy over the training classes."""
  del rng
  outputs, updates = make_model(config).apply(
      {"params": params, **method_state}, batch["image"], train=True, mutable=["batch_stats"])
  loss = optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], batch["label"]).mean()
  accuracy = jnp.mean(jnp.argmax(outputs["logits"], -1) == batch["label"])
  return loss, ({"accuracy": accuracy}, {**method_state, **updates})


init_state = flax_model.init_state(make_model)
embed_fn = flax_model.eval_output(make_model, "embedding")  # [B, D]
classify_fn = flax_model.eval_output(make_model, "logits")  # [B, num_classes]
METHOD = Method("baseline", init_state=init_state, loss_fn=loss_fn, embed_fn=embed_fn, classify_fn=classify_fn,
                make_model=make_model)
