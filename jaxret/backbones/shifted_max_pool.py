"""Max pooling as a maximum over shifted windows, whose gradient XLA:CPU runs fast.

XLA differentiates `reduce_window` max with select-and-scatter, which XLA:CPU runs as a slow
loop: ResNet's stem pool (3 x 3, stride 2, batch 8, 112 x 112 x 64) took 12 ms forward and
122 ms forward + backward on the 2-core CPU. Here the padded input is sliced into the kh x kw
strided windows, the first window holding each output's maximum is found by comparisons, and
the output selects it: autodiff then sends each output's gradient to that one input (the first
maximum in row-major window order, as select-and-scatter and PyTorch's saved argmax do) through
pads and selects: 10 ms and 27 ms, values and gradients bit-equal (BENCHMARKS.md). Used on CPU
only; other backends keep `flax.linen.max_pool`.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp


def max_pool(x: jax.Array, window: tuple[int, int], strides: tuple[int, int],
             padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  """`flax.linen.max_pool` of NHWC `x` [B, H, W, C] (padding with -inf): [B, H', W', C],
  H' = (H + pad_h - kh) // stride_h + 1 (likewise W')."""
  if jax.default_backend() != "cpu":
    return nn.max_pool(x, window, strides=strides, padding=padding)
  return shifted_max_pool(x, window, strides, padding)


def shifted_max_pool(x: jax.Array, window: tuple[int, int], strides: tuple[int, int],
                     padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  """The max pool of `max_pool` as a selection among kh x kw strided windows (any backend)."""
  (kh, kw), (sh, sw) = window, strides
  if kh * kw > 127:
    raise ValueError(f"shifted_max_pool: window {window} has more than 127 positions.")
  padded = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)), constant_values=-jnp.inf)
  ho = (padded.shape[1] - kh) // sh + 1
  wo = (padded.shape[2] - kw) // sw + 1
  taps = [padded[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]
  best, first = taps[0], jnp.zeros(taps[0].shape, jnp.int8)  # window index (kh * kw <= 127)
  for k, tap in enumerate(taps[1:], 1):  # strictly greater: the first maximum wins ties
    better = tap > best
    best = jnp.where(better, tap, best)
    first = jnp.where(better, k, first)
  out = taps[0]
  for k, tap in enumerate(taps[1:], 1):  # the selected window itself, so the gradient reaches only it
    out = jnp.where(first == k, tap, out)
  return out
