"""Crop and zoom (DeML, between scales): the public code's squared box of the above-mean region
on hand-made maps, bilinear crops against jax.image.resize, and no gradient through the box."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxret.ops import crop_zoom


def _map(h, w, top, left, bottom, right, value=1.0):
  m = np.zeros((h, w), np.float32)
  m[top:bottom, left:right] = value
  return m


def test_box_is_squared_as_the_public_code_and_cut_by_the_image():
  """ProposalCrop: side round((h + w) / 2), x + round((w - h) / 4), y + round((h - w) / 4) (OpenCV
  rounds halves to even), then intersected with the image."""
  maps = np.stack([
      _map(8, 8, 2, 1, 5, 6),  # h 3, w 5: side 4, rows 2 + round(-0.5) = 2, cols 1 + round(0.5) = 1
      _map(8, 8, 0, 0, 2, 6),  # h 2, w 6: side 4 from row -1, cut at the top edge to 3 x 4
      _map(8, 8, 3, 4, 7, 5),  # h 4, w 1: side round(2.5) = 2, rows 3 + round(0.75) = 4, cols 4 + round(-0.75) = 3
      np.ones((8, 8), np.float32),  # constant: every pixel is above its mean -> the whole image
      _map(8, 8, 6, 6, 8, 8, value=3.0) + 0.5 * _map(8, 8, 0, 0, 1, 1),  # the mean is a threshold
  ])
  boxes = np.asarray(jax.jit(crop_zoom.attention_box)(jnp.asarray(maps)))
  np.testing.assert_allclose(boxes, [[2, 1, 6, 5], [0, 1, 3, 5], [4, 3, 6, 5], [0, 0, 8, 8], [0, 0, 8, 8]])


def test_box_on_a_wide_image_is_centred_and_cut_by_its_height():
  boxes = np.asarray(crop_zoom.attention_box(jnp.asarray(_map(4, 10, 1, 0, 2, 10)[None])))
  np.testing.assert_allclose(boxes, [[0, 2, 4, 8]])  # h 1, w 10: side round(5.5) = 6 about column 5
  boxes = np.asarray(crop_zoom.attention_box(jnp.asarray(_map(4, 10, 1, 6, 3, 8)[None])))
  np.testing.assert_allclose(boxes, [[1, 6, 3, 8]])  # already square


def test_crop_and_zoom_samples_the_box_bilinearly():
  images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  boxes = np.array([[0, 0, 8, 8], [2, 4, 6, 8]], np.float32)  # the whole image; a 4 x 4 corner
  out = np.asarray(jax.jit(lambda x, b: crop_zoom.crop_and_zoom(x, b, (8, 8)))(jnp.asarray(images), jnp.asarray(boxes)))
  np.testing.assert_allclose(out[0], images[0], atol=1e-6)
  want = jax.image.resize(images[1, 2:6, 4:8], (8, 8, 3), "linear")
  np.testing.assert_allclose(out[1], want, atol=1e-5)


def test_attend_and_zoom_keeps_the_shape_and_stops_the_gradient():
  images = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8, 8, 3)), jnp.float32)
  attention = jnp.asarray(np.stack([_map(8, 8, 2, 2, 4, 4), _map(8, 8, 0, 0, 8, 8)]))
  zoomed, boxes = jax.jit(crop_zoom.attend_and_zoom)(images, attention)
  assert zoomed.shape == images.shape
  np.testing.assert_allclose(boxes, [[2, 2, 4, 4], [0, 0, 8, 8]])
  np.testing.assert_allclose(zoomed[1], images[1], atol=1e-6)
  grad = jax.grad(lambda a: jnp.sum(crop_zoom.attend_and_zoom(images, a)[0]))(attention)
  assert np.all(np.asarray(grad) == 0)
