import numpy as np
import pytest
from PIL import Image

from jaxret.viz import retrieval_grid


def _colour(name):
  return np.array([int(name[i:i + 2], 16) for i in (1, 3, 5)], np.float32)


def test_grid_png_frames_right_green_and_wrong_red_with_expected_size(tmp_path):
  rng = np.random.default_rng(0)
  # Grey noise of several shapes: no pixel of it is near a frame colour.
  images = [np.repeat(rng.integers(0, 256, (30 + 7 * i, 40, 1), dtype=np.uint8), 3, axis=-1) for i in range(8)]
  correct = np.array([[True, False, True], [False, False, False]])
  out = str(tmp_path / "grid.png")
  retrieval_grid.save_retrieval_grid(out, images[:2], [images[2:5], images[5:8]], rng.random((2, 3)),
                                     correct=correct, thumb=64)
  with Image.open(out) as image:
    assert image.size == retrieval_grid.grid_size(2, 3, 64) == (4 * 76, 2 * 100)
    pixels = np.asarray(image.convert("RGB"), np.float32)
  assert pixels.std() > 20

  def has(colour, row, column):  # a pixel of `colour` (the frame) inside that cell
    cell = pixels[row * 100:(row + 1) * 100, column * 76:(column + 1) * 76]
    return bool((np.abs(cell - _colour(colour)).max(axis=-1) < 30).any())

  assert has(retrieval_grid.QUERY_COLOUR, 0, 0) and has(retrieval_grid.QUERY_COLOUR, 1, 0)
  for row in range(2):
    for j in range(3):
      expected, other = ((retrieval_grid.CORRECT_COLOUR, retrieval_grid.WRONG_COLOUR) if correct[row, j]
                         else (retrieval_grid.WRONG_COLOUR, retrieval_grid.CORRECT_COLOUR))
      assert has(expected, row, j + 1) and not has(other, row, j + 1)


def test_grid_rejects_scores_that_do_not_match_the_images():
  image = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match=r"shape \(1, 3\).*lengths \[2\]"):
    retrieval_grid.retrieval_grid([image], [[image, image]], np.zeros((1, 3)))
  with pytest.raises(ValueError, match=r"correct has shape \(1, 1\), expected \(1, 2\)"):
    retrieval_grid.retrieval_grid([image], [[image, image]], np.zeros((1, 2)), correct=np.ones((1, 1), bool))
