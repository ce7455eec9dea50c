"""L2 normalisation over the last axis: the one definition behind every unit vector in jaxret (DeML's
learners and cosine similarities, Zhang & Xu's fused descriptor)."""
import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """`x / max(||x||_2, eps)` over the last axis: `[..., d]` -> `[..., d]` (a zero vector stays zero)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)
