"""KL consistency between attribute vectors (VAPNet's attribute parameterisation constraint).

VAPNet's Eqs. 5-6 (papers/vapnet.txt) write `sum_i T(F^i) log(T(F^i) / A^i)`, a KL divergence
between attribute vectors; encoder outputs are unnormalised, so, as NOTES.md prescribes, both
sides are made distributions with a softmax over the k attribute dimensions:
`KL(softmax(target) || softmax(prediction))`.
"""
import jax
import jax.numpy as jnp


def softmax_kl(target_logits: jax.Array, logits: jax.Array) -> jax.Array:
  """`KL(p || q) = sum_k p_k (log p_k - log q_k)`, p = softmax(target_logits), q = softmax(logits),
  over the last axis: `[..., k]`, `[..., k]` -> `[...]`."""
  log_p = jax.nn.log_softmax(target_logits.astype(jnp.float32), axis=-1)
  log_q = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def attribute_consistency(targets_local: jax.Array, attributes_local: jax.Array, targets_global: jax.Array,
                          attributes_global: jax.Array) -> jax.Array:
  """VAPNet Eq. 5 (targets from the encoders) / Eq. 6 (targets from the mean encoders), averaged
  over the images of the batch:
  `mean_b sum_i [KL(T_G(F_L^i) || A_L^i) + KL(T_L(F_G^i) || A_G^i)]`.

  targets_local `T_G(F_L^i)`, attributes_local `A_L^i = T_L(F_L^i)`, targets_global `T_L(F_G^i)`,
  attributes_global `A_G^i = T_G(F_G^i)`: logits `[B, M, k]` -> scalar."""
  per_view = softmax_kl(targets_local, attributes_local) + softmax_kl(targets_global, attributes_global)  # [B, M]
  return jnp.mean(jnp.sum(per_view, axis=-1))
