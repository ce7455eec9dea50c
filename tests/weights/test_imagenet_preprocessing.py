"""Tests for jaxret/weights/imagenet_preprocessing.py: torchvision's Resize(256), CenterCrop(224)."""
import numpy as np
import pytest
from PIL import Image

from jaxret.weights import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval_transform


def test_resizes_the_short_side_and_crops_the_centre():
  # 300 x 451 (chelsea's size): resized to 256 x int(256 * 451 / 300) = 256 x 384, crop at
  # top round(16) = 16, left round(80) = 80. A column ramp shows which columns survive.
  image = np.repeat(np.repeat(np.arange(451, dtype=np.float64)[None, :, None], 300, 0), 3, 2)
  image = (image * 255 / 450).round().astype(np.uint8)
  out = imagenet_eval_transform(image)
  assert out.shape == (224, 224, 3) and out.dtype == np.float32
  resized = np.asarray(Image.fromarray(image).resize((384, 256), Image.BILINEAR), np.float32)
  want = (resized[16:240, 80:304] / 255 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
  np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


def test_normalises_with_imagenet_statistics():
  out = imagenet_eval_transform(np.full((240, 260, 3), 51, np.uint8))  # 51 / 255 = 0.2
  np.testing.assert_allclose(out[0, 0], (0.2 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD),
                             rtol=1e-5)
  assert imagenet_eval_transform(Image.new("L", (500, 300))).shape == (224, 224, 3)


def test_rejects_non_rgb_arrays():
  with pytest.raises(ValueError, match=r"image of shape \(8, 8\) and dtype uint8: expected uint8"):
    imagenet_eval_transform(np.zeros((8, 8), np.uint8))
