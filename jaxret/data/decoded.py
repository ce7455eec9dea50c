"""Training images decoded once into host memory, so that a training step's host work is indexing
and copying (`config.data.pipeline = "device"`; the augmentation runs on the accelerator,
`jaxret.data.device_augment`).

Each image is decoded and resized once with the host pipeline's own `augment.resize` (PIL
bilinear): to the input shape when `config.data.augment` is "resize" (the host pipeline's whole
transform), else so that its shorter side is `config.data.resize_size` (aspect kept, as the host
pipeline's `random_crop` resizes), its longer side then centre-cropped to at most
`round(4 / 3 * resize_size)`; a random crop or random resized crop then samples its box inside
the stored image. Images are stored top-left in one zero uint8 canvas `[N, C, C, 3]` (`C` the
longest stored side) with their stored size in `image_hw`. A 256 px CUB image (500 x 375) becomes
341 x 256: 349 KB of canvas, 4.2 GB for CUB's 11,788 images; re-ID crops at 256 x 128, 98 KB.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from typing import Any

import ml_collections
import numpy as np

from jaxret.data import augment, pipeline

log = logging.getLogger(__name__)
MAX_ASPECT = 4 / 3  # longer side / shorter side kept; beyond it the longer side is centre-cropped


def stored_shape(config: ml_collections.ConfigDict, height: int, width: int) -> tuple[int, int]:
  """(H, W) an image of `height` x `width` is stored at (module docstring)."""
  if config.data.augment == "resize":
    return pipeline.image_shape(config)
  short = config.data.resize_size
  long_cap = round(MAX_ASPECT * short)
  if height <= width:
    return short, min(max(1, round(width * short / height)), long_cap)
  return min(max(1, round(height * short / width)), long_cap), short


def canvas_size(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(C_h, C_w) of the canvas that holds every stored image."""
  if config.data.augment == "resize":
    return pipeline.image_shape(config)
  side = round(MAX_ASPECT * config.data.resize_size)
  return side, side


def decode(image: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
  """One uint8 image `[h, w, 3]` -> its stored form `[H, W, 3]` (`stored_shape`)."""
  if config.data.augment == "resize":
    return augment.resize(image, pipeline.image_shape(config))
  resized = augment.resize(image, config.data.resize_size)
  shape = stored_shape(config, *image.shape[:2])
  return augment.center_crop(resized, shape)


class DecodedImages:
  """`source`'s examples with every image decoded once (grain source protocol).

  `[i]` -> {"image": uint8 canvas `[C_h, C_w, 3]` (the stored image top-left, zeros after),
  "image_hw": int32 `[2]` (its stored height and width), the source's other numeric fields}.
  """

  def __init__(self, source: Any, config: ml_collections.ConfigDict, num_threads: int | None = None):
    self.source = source
    n = len(source)
    first = source[0]
    self.fields = {k: np.empty((n, *np.shape(v)), np.asarray(v).dtype) for k, v in first.items()
                   if k != "image" and np.asarray(v).dtype.kind in "biuf"}
    self.images = np.zeros((n, *canvas_size(config), 3), np.uint8)
    self.image_hw = np.zeros((n, 2), np.int32)
    start, report = time.perf_counter(), max(n // 10, 1)

    def read(i: int) -> int:
      example = source[i]
      image = decode(np.asarray(example["image"]), config)
      self.images[i, :image.shape[0], :image.shape[1]] = image
      self.image_hw[i] = image.shape[:2]
      for k, column in self.fields.items():
        column[i] = example[k]
      return i

    # PIL decodes and resizes without the GIL: one thread per core
    with concurrent.futures.ThreadPoolExecutor(num_threads or os.cpu_count() or 1) as threads:
      for done, _ in enumerate(threads.map(read, range(n)), 1):
        if done % report == 0 or done == n:
          log.info("decoded %d / %d training images (%.0f s)", done, n, time.perf_counter() - start)

  def __len__(self) -> int:
    return len(self.images)

  @property
  def labels(self) -> np.ndarray:
    """The label of every example, `[N]` (read without touching the images)."""
    return self.fields["label"]

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"image": self.images[index], "image_hw": self.image_hw[index],
            **{k: column[index] for k, column in self.fields.items()}}

  def __repr__(self) -> str:
    return f"DecodedImages({len(self)} x {self.images.shape[1:]} of {self.source!r})"
