"""Encoded images: checked by a full decode when a dataset is prepared, decoded to RGB when read.

Prepared datasets store each image's original file bytes (no re-encoding, so no quality is
lost); a corrupt or truncated file is caught at preparation time, never mid-training.
"""
import io

import numpy as np
from PIL import Image


def check(data: bytes) -> tuple[int, int]:
  """Decodes `data` completely (PIL `verify()`, then `load()` of every pixel).

  Returns:
    (height, width) of the image.
  Raises:
    ValueError: saying why the bytes are not a readable image (truncated, corrupt, unknown format).
  """
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.verify()
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      width, height = image.size
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"expected a readable image, PIL says {type(e).__name__}: {e}") from None
  if width < 1 or height < 1:
    raise ValueError(f"expected a non-empty image, found {width}x{height} pixels")
  return height, width


def decode_rgb(data: bytes, crop: np.ndarray | None = None) -> np.ndarray:
  """Decodes an encoded image to RGB (grey, palette and CMYK are converted).

  Args:
    data: the encoded file (JPEG, PNG, ...).
    crop: optional int `[4]` box `(top, left, bottom, right)` in pixels to keep.
  Returns:
    uint8 `[H, W, 3]`.
  """
  with Image.open(io.BytesIO(data)) as image:
    if crop is not None:
      top, left, bottom, right = (int(v) for v in crop)
      image = image.crop((left, top, right, bottom))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
