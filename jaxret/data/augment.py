"""Image transforms on uint8 `[H, W, 3]` arrays, with torchvision's semantics, seeded by a
`np.random.Generator` so a pipeline is deterministic per seed.

Train: `random_resized_crop` (Inception-style, as torchvision's RandomResizedCrop) or
`resize` + `random_crop` (resize 256 -> crop 224 of the papers), then `flip` and `color_jitter`.
Eval: `resize` + `center_crop`, or `resize` to the input size.
"""
import math

import numpy as np
from PIL import Image


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Bilinear resize. `size` (H, W), or an int: the shorter side becomes `size`, aspect kept."""
  h, w = image.shape[:2]
  if isinstance(size, int):
    size = (size, max(1, round(w * size / h))) if h <= w else (max(1, round(h * size / w)), size)
  if (h, w) == tuple(size):
    return image
  return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """The central `size` (H, W) window (torchvision's rounding), zero-padded if the image is smaller."""
  image = _pad_to(image, size)
  h, w = image.shape[:2]
  top, left = int(round((h - size[0]) / 2.0)), int(round((w - size[1]) / 2.0))
  return image[top:top + size[0], left:left + size[1]]


def random_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
  """A uniformly placed `size` (H, W) window, zero-padded if the image is smaller."""
  image = _pad_to(image, size)
  h, w = image.shape[:2]
  top, left = rng.integers(0, h - size[0] + 1), rng.integers(0, w - size[1] + 1)
  return image[top:top + size[0], left:left + size[1]]


def random_resized_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
  """torchvision's RandomResizedCrop: the window of `resized_crop_box` resized to `size` (H, W)."""
  top, left, ch, cw = resized_crop_box(*image.shape[:2], rng, scale, ratio)
  return resize(image[top:top + ch, left:left + cw], size)


def resized_crop_box(h: int, w: int, rng: np.random.Generator, scale: tuple[float, float] = (0.08, 1.0),
                     ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
  """torchvision's RandomResizedCrop window (top, left, height, width) in an `h` x `w` image: area
  fraction ~U(scale) and log-uniform aspect ratio (10 tries, then the central crop of the clamped
  ratio)."""
  area = h * w
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target_area = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    cw, ch = int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
  aspect = w / h
  if aspect < ratio[0]:
    cw, ch = w, int(round(w / ratio[0]))
  elif aspect > ratio[1]:
    cw, ch = int(round(h * ratio[1])), h
  else:
    cw, ch = w, h
  return int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0)), ch, cw


def flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Left-right mirror with probability 1/2."""
  return image[:, ::-1] if rng.random() < 0.5 else image


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
  """Brightness, contrast and saturation each scaled by ~U(1 - strength, 1 + strength), in a
  random order (torchvision's ColorJitter(strength, strength, strength) without hue)."""
  order = rng.permutation(3)
  factors = [rng.uniform(max(0.0, 1 - strength), 1 + strength) for _ in range(3)]
  return adjust_colors(image, order, factors)


def adjust_colors(image: np.ndarray, order, factors) -> np.ndarray:
  """Colour jitter's operations in `order` (0 brightness, 1 contrast, 2 saturation), the k-th by
  `factors[k]`, clipped to 0..255 after each, rounded to uint8 at the end."""
  x = image.astype(np.float32)
  for op, factor in zip(order, factors):
    if op == 0:  # brightness: blend with black
      x = x * factor
    elif op == 1:  # contrast: blend with the mean grey level
      x = _blend(x, np.float32(_grey(x).mean()), factor)
    else:  # saturation: blend with the grey image
      x = _blend(x, _grey(x)[..., None], factor)
    x = np.clip(x, 0, 255)
  return np.round(x).astype(np.uint8)


def _blend(x: np.ndarray, other, factor: float) -> np.ndarray:
  return factor * x + (1 - factor) * other


def _grey(x: np.ndarray) -> np.ndarray:
  """ITU-R 601-2 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale."""
  return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _pad_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  h, w = image.shape[:2]
  if h >= size[0] and w >= size[1]:
    return image
  out = np.zeros((max(h, size[0]), max(w, size[1]), image.shape[2]), image.dtype)
  top, left = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
  out[top:top + h, left:left + w] = image
  return out
