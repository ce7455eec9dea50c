"""Crop around the attended region and zoom back to a fixed size (DeML Sec. 3, the operation
between scales in Fig. 2), as the public code's ProposalCrop layer does it: the attention map is
normalised to [0, 1], thresholded at its mean, the bounding box (x, y, w, h) of the region above
the threshold is made square with OpenCV's rounding (side round((w + h) / 2), moved by
round((w - h) / 4) and round((h - w) / 4) so that its centre stays), intersected with the image
(so a box at an edge comes out cut, not square), and cropped and resized (bilinear) to the output
size.

The public code keeps only the largest connected region above the threshold; connected
components have no fixed-shape jit form, so jaxret boxes every pixel above the mean (the same
box when the attended region is one blob), and it thresholds with >= where OpenCV's binary
threshold is strict (a constant map then boxes the whole image instead of nothing). The box
carries no gradient (`stop_gradient`): the crop is a non-differentiable choice of input, as in
the paper's code.
"""
import jax
import jax.numpy as jnp

from jaxret.ops.bilinear import crop_and_resize


def attention_box(attention: jax.Array) -> jax.Array:
  """The public code's squared box around the above-mean pixels of each map: `[B, H, W]` ->
  float32 `[B, 4]` (top, left, bottom, right) in pixel units, bottom/right exclusive.

  The box of the above-mean pixels (all pixels of a constant map), of height h and width w, becomes
  the square of side round((h + w) / 2) about its centre (OpenCV's cvRound: halves to even, as
  jnp.round), intersected with the image.
  """
  attention = jax.lax.stop_gradient(attention.astype(jnp.float32))
  b, h, w = attention.shape
  low = jnp.min(attention, axis=(1, 2), keepdims=True)
  high = jnp.max(attention, axis=(1, 2), keepdims=True)
  normalised = (attention - low) / jnp.maximum(high - low, 1e-12)
  above = normalised >= jnp.mean(normalised, axis=(1, 2), keepdims=True)  # [B, H, W]; never empty

  def extent(mask_along: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    index = jnp.arange(size, dtype=jnp.float32)
    first = jnp.min(jnp.where(mask_along, index, size), axis=1)
    last = jnp.max(jnp.where(mask_along, index, -1), axis=1) + 1
    return first, last

  top, bottom = extent(jnp.any(above, axis=2), h)
  left, right = extent(jnp.any(above, axis=1), w)
  height, width = bottom - top, right - left
  side = jnp.round((height + width) / 2)
  top = top + jnp.round((height - width) / 4)
  left = left + jnp.round((width - height) / 4)
  return jnp.stack([jnp.clip(top, 0, h), jnp.clip(left, 0, w), jnp.clip(top + side, 0, h),
                    jnp.clip(left + side, 0, w)], axis=1)


def crop_and_zoom(images: jax.Array, boxes: jax.Array, out_size: tuple[int, int]) -> jax.Array:
  """Each image's box resized (bilinear) to `out_size`: images `[B, H, W, C]`, boxes `[B, 4]`
  (top, left, bottom, right in pixels, as `attention_box`) -> `[B, out_h, out_w, C]`
  (`jaxret.ops.bilinear.crop_and_resize`: a fixed output shape under jit)."""
  top, left, bottom, right = jnp.moveaxis(jax.lax.stop_gradient(boxes.astype(jnp.float32)), -1, 0)
  return crop_and_resize(images, jnp.stack([left, top, right, bottom], axis=-1)[:, None], out_size)[:, 0]


def attend_and_zoom(images: jax.Array, attention: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The next scale's input: images `[B, H, W, C]`, attention `[B, H, W]` (image size) ->
  (zoomed crops `[B, H, W, C]`, boxes `[B, 4]`)."""
  boxes = attention_box(attention)
  return crop_and_zoom(images, boxes, images.shape[1:3]), boxes
