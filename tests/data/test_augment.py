"""Transforms against their definitions (torchvision's semantics), on small uint8 images."""
import numpy as np
import pytest
from PIL import Image

from jaxret.data import augment


def _image(h=40, w=60, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_resize_shorter_side_keeps_the_aspect_ratio_and_matches_pil():
  image = _image(40, 60)
  out = augment.resize(image, 20)
  assert out.shape == (20, 30, 3)
  np.testing.assert_array_equal(out, np.asarray(Image.fromarray(image).resize((30, 20), Image.BILINEAR)))
  assert augment.resize(image, (10, 7)).shape == (10, 7, 3)


def test_center_crop_takes_the_middle_window():
  image = _image(40, 60)
  np.testing.assert_array_equal(augment.center_crop(image, (20, 30)), image[10:30, 15:45])
  padded = augment.center_crop(image, (50, 60))
  assert padded.shape == (50, 60, 3) and not padded[:5].any() and not padded[-5:].any()


def test_random_crop_is_a_window_of_the_image():
  image = _image(40, 60)
  crop = augment.random_crop(image, (16, 16), np.random.default_rng(3))
  windows = np.lib.stride_tricks.sliding_window_view(image, (16, 16, 3))[..., 0, :, :, :]
  assert np.any(np.all(windows == crop, axis=(-3, -2, -1)))


def test_random_resized_crop_covers_a_window_within_the_scale_range():
  # A ramp image: the crop's corner values reveal which window was taken.
  ys, xs = np.mgrid[0:100, 0:100]
  image = np.stack([ys, xs, np.zeros_like(ys)], -1).astype(np.uint8)
  areas = []
  for seed in range(50):
    out = augment.random_resized_crop(image, (50, 50), np.random.default_rng(seed), scale=(0.25, 1.0))
    assert out.shape == (50, 50, 3)
    h = int(out[-1, 0, 0]) - int(out[0, 0, 0]) + 1
    w = int(out[0, -1, 1]) - int(out[0, 0, 1]) + 1
    areas.append(h * w / 100 ** 2)
  assert min(areas) > 0.2 and max(areas) <= 1.0 and np.std(areas) > 0.05


def test_flip_mirrors_half_of_the_time():
  image = _image()
  rng = np.random.default_rng(0)
  flips = [np.array_equal(augment.flip(image, rng), image[:, ::-1]) for _ in range(400)]
  assert 150 < sum(flips) < 250


def test_color_jitter_with_zero_strength_is_the_identity():
  image = _image()
  np.testing.assert_array_equal(augment.color_jitter(image, np.random.default_rng(0), 0.0), image)


def test_color_jitter_only_scales_the_brightness_of_a_flat_grey_image():
  # Contrast and saturation blend with the grey level, which a flat grey image already is.
  image = np.full((4, 4, 3), 100, np.uint8)
  values = {int(augment.color_jitter(image, np.random.default_rng(seed), 0.4)[0, 0, 0]) for seed in range(30)}
  assert min(values) >= 60 and max(values) <= 140 and len(values) > 10
  out = augment.color_jitter(image, np.random.default_rng(0), 0.4)
  assert np.all(out == out[0, 0, 0])


@pytest.mark.parametrize("size", [(8, 8), (12, 6)])
def test_outputs_have_the_requested_shape(size):
  rng = np.random.default_rng(0)
  for out in (augment.random_resized_crop(_image(), size, rng), augment.resize(_image(), size),
              augment.random_crop(_image(), size, rng), augment.center_crop(_image(), size)):
    assert out.shape == (*size, 3)
