"""RoIAlign against a loop-by-loop NumPy transcription of its definition (torchvision's
roi_align_kernel: bins, sampling points, bilinear_interpolate with its border rules), and its
gradients against finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.ops import roi_align as roi_align_lib

# compiled once per static setting (eager dispatch op by op is slower on a busy CPU)
roi_align = jax.jit(roi_align_lib.roi_align, static_argnums=(2, 3, 4, 5))


def _bilinear(plane, y, x):
  """torchvision's bilinear_interpolate on one channel plane [H, W]."""
  height, width = plane.shape
  if y < -1.0 or y > height or x < -1.0 or x > width:
    return 0.0
  y, x = max(y, 0.0), max(x, 0.0)
  y_low, x_low = int(y), int(x)
  if y_low >= height - 1:
    y_high = y_low = height - 1
    y = float(y_low)
  else:
    y_high = y_low + 1
  if x_low >= width - 1:
    x_high = x_low = width - 1
    x = float(x_low)
  else:
    x_high = x_low + 1
  ly, lx = y - y_low, x - x_low
  hy, hx = 1.0 - ly, 1.0 - lx
  return (hy * hx * plane[y_low, x_low] + hy * lx * plane[y_low, x_high] + ly * hx * plane[y_high, x_low]
          + ly * lx * plane[y_high, x_high])


def _roi_align_reference(features, boxes, output_size, spatial_scale, sampling_ratio, aligned):
  """features [B, H, W, C], boxes [B, K, 4] -> [B, K, oh, ow, C], one sample at a time."""
  b, _, _, c = features.shape
  oh, ow = output_size
  out = np.zeros((b, boxes.shape[1], oh, ow, c))
  offset = 0.5 if aligned else 0.0
  for n in range(b):
    for k in range(boxes.shape[1]):
      x1, y1, x2, y2 = boxes[n, k]
      start_w, start_h = x1 * spatial_scale - offset, y1 * spatial_scale - offset
      roi_w, roi_h = x2 * spatial_scale - offset - start_w, y2 * spatial_scale - offset - start_h
      if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
      bin_h, bin_w = roi_h / oh, roi_w / ow
      for ph in range(oh):
        for pw in range(ow):
          for ch in range(c):
            total = 0.0
            for iy in range(sampling_ratio):
              y = start_h + ph * bin_h + (iy + 0.5) * bin_h / sampling_ratio
              for ix in range(sampling_ratio):
                x = start_w + pw * bin_w + (ix + 0.5) * bin_w / sampling_ratio
                total += _bilinear(features[n, :, :, ch], y, x)
            out[n, k, ph, pw, ch] = total / (sampling_ratio * sampling_ratio)
  return out


RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(2, 6, 7, 3))  # B = 2, H = 6, W = 7, C = 3
BOXES = np.array([
    [[0.0, 0.0, 7.0, 6.0],  # the whole map, on the grid
     [1.0, 2.0, 4.0, 5.0],  # on the grid
     [0.3, 1.7, 5.2, 3.9],  # off the grid
     [-2.5, -1.2, 2.0, 1.5],  # over the top-left border (some samples below -1: zero)
     [5.5, 4.1, 8.9, 7.7]],  # over the bottom-right border
    [[2.6, 0.4, 3.1, 0.9],  # smaller than a pixel
     [6.0, 5.0, 7.0, 6.0],  # the last pixel
     [-3.0, -3.0, -1.8, -1.6],  # entirely outside
     [0.25, 0.75, 6.75, 5.25],
     [3.0, 2.0, 3.0, 2.0]]])  # empty


@pytest.mark.parametrize("output_size,sampling_ratio,aligned,spatial_scale", [
    ((2, 2), 2, True, 1.0), ((3, 4), 1, True, 1.0), ((2, 3), 3, False, 1.0), ((2, 2), 2, True, 0.5)])
def test_matches_the_definition(output_size, sampling_ratio, aligned, spatial_scale):
  boxes = BOXES / spatial_scale  # the same map regions, in input pixels
  want = _roi_align_reference(FEATURES, boxes, output_size, spatial_scale, sampling_ratio, aligned)
  got = roi_align(jnp.asarray(FEATURES, jnp.float32), jnp.asarray(boxes, jnp.float32), output_size,
                  spatial_scale, sampling_ratio, aligned)
  assert got.shape == (2, 5, *output_size, 3)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert np.all(np.asarray(got)[1, 2] == 0.0)  # samples below -1 read nothing


def test_aligned_one_sample_per_pixel_bin_reads_the_pixels():
  # aligned=True: a box on pixel edges with one bin per pixel samples exactly the pixel centres.
  got = roi_align(jnp.asarray(FEATURES, jnp.float32), jnp.asarray([[[1.0, 2.0, 4.0, 5.0]]] * 2, jnp.float32),
                  (3, 3), 1.0, 1)
  np.testing.assert_allclose(got[:, 0], FEATURES[:, 2:5, 1:4], atol=1e-6)


def test_per_axis_spatial_scale():
  boxes = np.array([[[2.0, 1.0, 10.0, 5.0]]] * 2)  # x scaled by 1/2, y by 1
  got = roi_align(jnp.asarray(FEATURES, jnp.float32), jnp.asarray(boxes, jnp.float32), (2, 2), (1.0, 0.5), 2)
  want = roi_align(jnp.asarray(FEATURES, jnp.float32), jnp.asarray(boxes * [0.5, 1, 0.5, 1], jnp.float32), (2, 2),
                   1.0, 2)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_gradients_match_finite_differences():
  with jax.enable_x64(True):
    features = jnp.asarray(FEATURES, jnp.float64)
    boxes = jnp.asarray(BOXES[:, 2:5], jnp.float64)  # boxes away from sample / pixel-centre ties
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 3, 2, 3)))
    loss = jax.jit(lambda f, b: jnp.sum(roi_align_lib.roi_align(f, b, (3, 2), 1.0, 2) * cotangent))
    grad_features, grad_boxes = jax.grad(loss, argnums=(0, 1))(features, boxes)
    eps = 1e-6
    direction = jnp.asarray(np.random.default_rng(2).normal(size=features.shape))
    fd = (loss(features + eps * direction, boxes) - loss(features - eps * direction, boxes)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(grad_features * direction), fd, rtol=1e-7)
    steps = eps * jnp.eye(boxes.size, dtype=jnp.float64).reshape(-1, *boxes.shape)  # each coordinate of each box
    fd = jax.vmap(lambda step: loss(features, boxes + step) - loss(features, boxes - step))(steps) / (2 * eps)
    np.testing.assert_allclose(grad_boxes, fd.reshape(boxes.shape), rtol=1e-5, atol=1e-8)
    assert np.any(np.abs(np.asarray(grad_boxes)) > 1e-3)


def test_jit_and_bad_arguments():
  fn = jax.jit(lambda f, b: roi_align_lib.roi_align(f, b, (2, 2), 0.25, 2))
  assert fn(jnp.zeros((2, 4, 4, 5)), jnp.zeros((2, 3, 4))).shape == (2, 3, 2, 2, 5)
  with pytest.raises(ValueError, match="sampling_ratio"):
    roi_align_lib.roi_align(jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 1, 4)), (2, 2), 1.0, sampling_ratio=0)
  with pytest.raises(ValueError, match="boxes"):
    roi_align_lib.roi_align(jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 4)), (2, 2))
