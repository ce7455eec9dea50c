"""Split protocols: which classes train, which validate, which are held out for testing."""
from collections.abc import Sequence

import numpy as np


def open_set_classes(num_classes: int) -> tuple[range, range]:
  """Zero-shot / open-set protocol: first half of the classes trains, second half tests."""
  half = num_classes // 2
  return range(0, half), range(half, num_classes)


def carve_validation(train_classes: Sequence[int], num_val_classes: int) -> tuple[list[int], list[int]]:
  """Holds out the last `num_val_classes` training classes for model selection.

  Validation never touches test classes, so choosing a checkpoint on it is not test-set selection.
  """
  train_classes = list(train_classes)
  if not 0 <= num_val_classes < len(train_classes):
    raise ValueError(
        f"config.data.val_classes={num_val_classes}: expected 0 <= val_classes < "
        f"{len(train_classes)} (the number of training classes)")
  cut = len(train_classes) - num_val_classes
  return train_classes[:cut], train_classes[cut:]


def reid_query_gallery(identities: np.ndarray, cameras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Re-ID query / gallery of a test split, as Market-1501's: one query per (identity, camera).

  The first image (in split order) of each (identity, camera) pair is a query; every other image
  is gallery, so no image is both. Returns (query indices, gallery indices), ascending.
  """
  identities, cameras = np.asarray(identities), np.asarray(cameras)
  if identities.shape != cameras.shape or identities.ndim != 1:
    raise ValueError(f"identities {identities.shape} and cameras {cameras.shape}: expected equal 1-D shapes")
  _, first = np.unique(np.stack([identities, cameras], axis=1), axis=0, return_index=True)
  is_query = np.zeros(len(identities), bool)
  is_query[first] = True
  return np.flatnonzero(is_query), np.flatnonzero(~is_query)


def closed_set_images(images_per_class: int, val_per_class: int,
                      query_per_class: int) -> tuple[range, range, range]:
  """Hashing protocol (query = test, database = train, same classes): each class's images split
  into train (the database), validation queries and test queries, in this order.

  Returns the image positions within a class: (train, val, test).
  """
  train = images_per_class - val_per_class - query_per_class
  if val_per_class < 0 or query_per_class < 1 or train < 1:
    raise ValueError(
        f"config.data.val_images_per_class={val_per_class}, query_images_per_class={query_per_class} "
        f"with {images_per_class} images per class: expected val >= 0, queries >= 1 and at least "
        "one training image per class")
  return (range(train), range(train, train + val_per_class),
          range(train + val_per_class, images_per_class))
