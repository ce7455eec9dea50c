"""Packed hash codes: {-1, +1} `[N, bits]` <-> uint8 `[N, ceil(bits / 8)]`, 8 bits per byte.

The layout is `np.packbits`'s (first bit in the byte's most significant position, bit 1 = +1,
the last byte zero-padded), the one `jaxret.eval.inputs.sign_codes` reads, so packed codes go
straight into `jaxret.eval.hashing_metrics` and the Hamming k-NN. Both directions are jnp ops
(jit-friendly): a database of 1M 48-bit codes takes 6 MB packed.
"""
import jax
import jax.numpy as jnp

_BYTE_WEIGHTS = jnp.array([128, 64, 32, 16, 8, 4, 2, 1], jnp.int32)


def pack_codes(codes: jax.Array) -> jax.Array:
  """codes `[N, bits]` (sign taken: > 0 -> bit 1, else 0; {-1, +1} codes round-trip) ->
  uint8 `[N, ceil(bits / 8)]`."""
  n, bits = codes.shape
  on = jnp.pad((codes > 0).astype(jnp.int32), ((0, 0), (0, -bits % 8)))
  return jnp.sum(on.reshape(n, -1, 8) * _BYTE_WEIGHTS, axis=-1).astype(jnp.uint8)


def unpack_codes(packed: jax.Array, bits: int) -> jax.Array:
  """uint8 `[N, bytes]` -> int8 codes in {-1, +1} `[N, bits]` (the padding bits dropped)."""
  on = (packed.astype(jnp.int32)[:, :, None] & _BYTE_WEIGHTS) > 0
  return jnp.where(on.reshape(packed.shape[0], -1)[:, :bits], 1, -1).astype(jnp.int8)
