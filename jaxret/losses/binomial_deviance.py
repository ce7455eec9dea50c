"""Binomial deviance on cosine similarity (Yi et al. 2014), as DeML's metric loss (Eq. 5).

For one learner with embeddings `x` `[B, d]`: `D_pq` is the cosine similarity of x_p and x_q;
each pair (p != q) costs `log(1 + exp(-(2 s_pq - 1) alpha (D_pq - beta) gamma_pq))` with
`s_pq` = 1 for the same class, `gamma_pq` = 1 for positive and 35 for negative pairs, and is
divided by the number of pairs of its kind (`w_pq`): the loss is the mean positive-pair cost
plus the mean negative-pair cost. A batch without pairs of a kind contributes 0 for that kind.
"""
import jax
import jax.numpy as jnp

from jaxret.ops.unit_vectors import l2_normalize

ALPHA = 2.0  # scaling of Eq. 5
BETA = 0.5  # translation of Eq. 5
POSITIVE_COST = 1.0  # gamma_pq for s_pq = 1
NEGATIVE_COST = 35.0  # gamma_pq for s_pq = 0


def cosine_similarity_matrix(x: jax.Array) -> jax.Array:
  """`D_pq` of Eq. 5: `[B, d]` -> `[B, B]`."""
  unit = l2_normalize(x)
  return unit @ unit.T


def binomial_deviance(x: jax.Array, labels: jax.Array, alpha: float = ALPHA, beta: float = BETA,
                      positive_cost: float = POSITIVE_COST, negative_cost: float = NEGATIVE_COST) -> jax.Array:
  """Eq. 5 for one learner (the inner sum over p, q): embeddings `[B, d]`, int labels `[B]` ->
  scalar. Self-pairs (p = q) are left out."""
  x = x.astype(jnp.float32)
  similarity = cosine_similarity_matrix(x)
  same = labels[:, None] == labels[None, :]
  other = ~jnp.eye(labels.shape[0], dtype=bool)
  positive, negative = same & other, ~same
  sign = jnp.where(same, 1.0, -1.0)  # 2 s_pq - 1
  gamma = jnp.where(same, positive_cost, negative_cost)
  cost = jax.nn.softplus(-sign * alpha * (similarity - beta) * gamma)  # log(1 + e^(...))
  mean_over = lambda mask: jnp.sum(jnp.where(mask, cost, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
  return mean_over(positive) + mean_over(negative)
