"""Gradient reversal (Ganin et al. 2016; DeML Sec. 3.2, Fig. 3c): the identity forward, the
gradient multiplied by `-scale` backward, so that one loss is minimised by the layers after it
and maximised by the layers before it (DeML's max-min game of Eq. 4 in one backward pass)."""
import functools

import jax


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def grad_reverse(x: jax.Array, scale: float = 1.0) -> jax.Array:
  """`x` unchanged; its cotangent becomes `-scale * g`. Any shape; `scale` a Python float."""
  return x


def _forward(x, scale):
  return x, None


def _backward(scale, _, g):
  return (jax.tree.map(lambda t: -scale * t, g),)


grad_reverse.defvjp(_forward, _backward)
