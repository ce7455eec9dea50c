"""Split protocols: which classes train, which validate, which are held out for testing."""
from collections.abc import Sequence

import numpy as np


# Zero-shot / open-set class splits of the papers: dataset -> (classes, training classes). The
# first classes (in the dataset's class-id order) train, the rest test.
OPEN_SET_SPLITS = {
    "synthetic": (200, 100),
    "cub": (200, 100),  # CUB-200-2011
    "caltech_birds2011": (200, 100),  # CUB-200-2011 through TFDS's builder
    "cars196": (196, 98),
    "fgvc_aircraft": (100, 50),  # variant level
    "stanford_online_products": (22634, 11318),  # Ebay_train.txt / Ebay_test.txt
}


def open_set_classes(num_classes: int, num_train: int | None = None) -> tuple[range, range]:
  """Zero-shot / open-set protocol: the first `num_train` classes (default: half) train, the
  others test."""
  num_train = num_classes // 2 if num_train is None else num_train
  if not 0 < num_train < num_classes:
    raise ValueError(f"open-set split of {num_classes} classes with {num_train} training classes: "
                     "expected 0 < training classes < classes")
  return range(0, num_train), range(num_train, num_classes)


def paper_open_set_classes(dataset: str) -> tuple[range, range]:
  """The open-set split of `dataset` used by the papers (see OPEN_SET_SPLITS)."""
  if dataset not in OPEN_SET_SPLITS:
    raise ValueError(f"no open-set split for dataset {dataset!r}; known: {sorted(OPEN_SET_SPLITS)}")
  return open_set_classes(*OPEN_SET_SPLITS[dataset])


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


def carve_images(labels: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
  """Closed-set validation: the last `per_class` images (in split order) of every class are held
  out, keeping at least one training image per class. Returns (train, val) indices, ascending."""
  labels = np.asarray(labels)
  val = np.zeros(len(labels), bool)
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    take = min(per_class, len(members) - 1)
    if take > 0:
      val[members[len(members) - take:]] = True
  return np.flatnonzero(~val), np.flatnonzero(val)
