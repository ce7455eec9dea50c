"""A folder of image files as a data source: every image under it (recursively), in sorted order.

`ImageFiles` is a random-access source like the datasets' (`len`, `[i] -> {"image": uint8
[H, W, 3]}`), so `jaxret.eval.evaluator.Embedder` embeds it with the evaluation preprocessing.
"""
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from jaxret.data.builders import image_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def list_images(directory: str) -> list[str]:
  """Paths relative to `directory` of every file with an `IMAGE_EXTENSIONS` extension (any case)
  under it, recursively, sorted.

  Raises:
    ValueError: naming `directory` when it does not exist or holds no image.
  """
  if not os.path.isdir(directory):
    raise ValueError(f"image folder {directory!r} does not exist (or is not a folder)")
  found = []
  for parent, _, names in os.walk(directory):
    found += [os.path.relpath(os.path.join(parent, n), directory) for n in names
              if n.lower().endswith(IMAGE_EXTENSIONS)]
  if not found:
    raise ValueError(f"image folder {directory!r} holds no image file (looked recursively for "
                     f"{', '.join(IMAGE_EXTENSIONS)})")
  return sorted(found)


def read_image(path: str) -> np.ndarray:
  """The RGB pixels uint8 `[H, W, 3]` of the image file `path`; ValueError naming it when it
  cannot be read or decoded."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise ValueError(f"cannot read image file {path!r}: {e}") from None
  try:
    return image_bytes.decode_rgb(data)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot decode image file {path!r}: expected a readable image, PIL says "
                     f"{type(e).__name__}: {e}") from None


class ImageFiles:
  """The images `root/paths[i]` as a source: `[i] -> {"image": uint8 [H, W, 3]}`."""

  def __init__(self, root: str, paths: Sequence[str]):
    self.root, self.paths = root, list(paths)

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"image": read_image(os.path.join(self.root, self.paths[index]))}
