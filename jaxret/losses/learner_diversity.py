"""The diversity terms between the J channel-attention learners of one scale (DeML Sec. 3.2).

- `adversary_discrepancy`, Eq. 4: `sum_{j,j'} ||F(CA_j) - F(CA_j')||^2` over ordered pairs,
  averaged over the batch. The adversary F minimises it; behind a gradient-reversal layer
  (`jaxret.ops.grad_reverse`) the learners, CAMs and backbone maximise it.
- `contrastive_hinge`, the public Caffe code's replacement: the L2-normalised branch embeddings
  of one image are pushed apart as dissimilar pairs of Caffe's ContrastiveLoss: one loss layer
  per unordered pair j < j' (`max(margin - ||a_j - a_j'||, 0)^2 / 2` averaged over the images),
  each at the same loss weight, so the pairs are summed (J (J - 1) / 2 of them), not averaged.
- `mean_learner_similarity`: Table 4's "sim", the mean cosine similarity between the J learners
  of an image (over images and pairs j != j').
"""
import jax
import jax.numpy as jnp

from jaxret.ops.unit_vectors import l2_normalize

HINGE_MARGIN = 2.0  # the public code's margin (unit vectors are at most 2 apart)


def _pairwise_squared_distance(x: jax.Array) -> jax.Array:
  """`[..., J, d]` -> `[..., J, J]` squared Euclidean distances."""
  diff = x[..., :, None, :] - x[..., None, :, :]
  return jnp.sum(jnp.square(diff), axis=-1)


def adversary_discrepancy(adversary_outputs: jax.Array) -> jax.Array:
  """Eq. 4 without lambda0: F's outputs for the J learners `[B, J, k]` -> scalar
  `mean_n sum_{j,j'} ||F(CA_j) - F(CA_j')||^2`."""
  return jnp.mean(jnp.sum(_pairwise_squared_distance(adversary_outputs.astype(jnp.float32)), axis=(-2, -1)))


def _upper_pairs_sum(values: jax.Array) -> jax.Array:
  """Mean over the batch of `[B, J, J]`, summed over the unordered pairs j < j'."""
  j = values.shape[-1]
  mask = jnp.triu(jnp.ones((j, j), dtype=bool), k=1)
  return jnp.sum(jnp.where(mask, values, 0.0)) / values.shape[0]


def _off_diagonal_mean(values: jax.Array) -> jax.Array:
  """Mean of `[B, J, J]` over the batch and the pairs j != j'."""
  j = values.shape[-1]
  mask = ~jnp.eye(j, dtype=bool)
  return jnp.sum(jnp.where(mask, values, 0.0)) / (values.shape[0] * j * (j - 1))


def contrastive_hinge(learners: jax.Array, margin: float = HINGE_MARGIN) -> jax.Array:
  """The public code's diversity loss (before its loss weight): learners `[B, J, d]` -> scalar
  `sum_{j < j'} mean_n max(margin - ||a_j - a_j'||, 0)^2 / 2` on L2-normalised `a` (one Caffe
  ContrastiveLoss with similarity 0 per pair)."""
  distance = jnp.sqrt(jnp.maximum(_pairwise_squared_distance(l2_normalize(learners.astype(jnp.float32))), 1e-12))
  return _upper_pairs_sum(jnp.square(jnp.maximum(margin - distance, 0.0)) / 2)


def mean_learner_similarity(learners: jax.Array) -> jax.Array:
  """Table 4's "sim": learners `[B, J, d]` -> the mean cosine similarity of the pairs j != j'."""
  unit = l2_normalize(learners.astype(jnp.float32))
  return _off_diagonal_mean(jnp.einsum("bjd,bkd->bjk", unit, unit))
