"""Local views: the 340 grid patches tile each grid exactly, sampling draws distinct patches and
reaches all of them, and crop-and-resize is bilinear resizing of the crop alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.ops import bilinear, local_views


@pytest.mark.parametrize("height,width", [(64, 64), (224, 224), (70, 50)])
def test_patch_boxes_cover_the_340_grid(height, width):
  boxes = local_views.grid_patch_boxes(height, width)
  assert boxes.shape == (340, 4) and boxes.dtype == np.int32
  start = 0
  for n in (2, 4, 8, 16):
    grid = boxes[start:start + n * n]
    start += n * n
    ph, pw = height // n, width // n
    assert np.all(grid[:, 2] - grid[:, 0] == pw) and np.all(grid[:, 3] - grid[:, 1] == ph)
    covered = np.zeros((height, width), int)
    for x1, y1, x2, y2 in grid:
      covered[y1:y2, x1:x2] += 1
    # every pixel of the n*floor(H/n) x n*floor(W/n) area exactly once, nothing beyond it
    np.testing.assert_array_equal(covered[:n * ph, :n * pw], 1)
    assert covered.sum() == n * n * ph * pw
  with pytest.raises(ValueError, match="16 x 16 grid of a 12 x 64 image"):
    local_views.grid_patch_boxes(12, 64)


def test_sampling_draws_distinct_patches_and_reaches_every_patch():
  draw = jax.jit(jax.vmap(lambda key: local_views.sample_patches(key, 128, 4, 340)))
  drawn = np.asarray(draw(jax.random.split(jax.random.key(0), 10)))  # [10 steps, B = 128, M = 4]
  assert drawn.dtype == np.int32 and drawn.min() >= 0 and drawn.max() < 340
  assert all(len(set(row)) == 4 for row in drawn.reshape(-1, 4))  # M distinct patches per image
  assert len(np.unique(drawn)) == 340  # 5,120 draws reach all 340 patches
  assert not np.array_equal(drawn[0, 0], drawn[0, 1])  # images draw independently
  counts = np.bincount(drawn.ravel(), minlength=340)
  assert counts.max() < 4 * counts.mean()  # uniform: no patch drawn far more often than the mean
  with pytest.raises(ValueError, match="1 <= M <= 340"):
    local_views.sample_patches(jax.random.key(0), 2, 341, 340)


def test_crop_and_resize_is_bilinear_resizing_of_the_crop():
  rng = np.random.default_rng(0)
  images = rng.normal(size=(2, 16, 12, 3)).astype(np.float32)
  boxes = np.array([[[0, 0, 6, 8], [3, 5, 6, 7]], [[6, 8, 12, 16], [0, 0, 12, 16]]], np.int32)
  got = np.asarray(bilinear.crop_and_resize(jnp.asarray(images), jnp.asarray(boxes), (16, 12)))
  assert got.shape == (2, 2, 16, 12, 3)
  for b in range(2):
    for m in range(2):
      x1, y1, x2, y2 = boxes[b, m]
      want = jax.image.resize(images[b, y1:y2, x1:x2], (16, 12, 3), "bilinear")  # half-pixel centres, edges clamped
      np.testing.assert_allclose(got[b, m], want, atol=1e-5, err_msg=f"box {b}, {m}")
  np.testing.assert_allclose(got[1, 1], images[1], atol=1e-6)  # the whole image: unchanged
