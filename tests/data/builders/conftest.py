"""Helpers for builder tests: tiny JPEGs written where a dataset's real layout puts them."""
import pathlib

import numpy as np
from PIL import Image
import pytest


def colour(index: int) -> tuple[int, int, int]:
  """A distinct flat colour per image index, so a test can tell images apart after decoding."""
  return (40 + 37 * index % 200, 200 - 23 * index % 180, 90 + 51 * index % 150)


def write_jpeg(path: pathlib.Path, index: int = 0, size: tuple[int, int] = (24, 40)) -> pathlib.Path:
  """Writes a flat-colour JPEG of `size` (width, height) at `path`, creating its folders."""
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new("RGB", size, colour(index)).save(path, format="JPEG", quality=95)
  return path


def assert_colour(image: np.ndarray, index: int) -> None:
  """`image` (uint8 [H, W, 3]) is the flat colour of `index`, up to JPEG rounding."""
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour(index), atol=3)


@pytest.fixture
def jpeg():
  return write_jpeg


@pytest.fixture
def same_colour():
  return assert_colour
