"""grain pipelines: deterministic training and evaluation batches, sharded per process.

Every process sees the same global order of examples; process p reads rows
[p * b, (p + 1) * b) of each global batch (b = global batch / process count), so a run on
P processes assembles exactly the global batches a one-process run reads.
"""
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grain
import numpy as np
from absl import flags

from jaxret.data import augment
from jaxret.weights.imagenet_preprocessing import IMAGENET_MEAN, IMAGENET_STD


def normalize(image: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` -> float32, scaled to [0, 1] then standardised with ImageNet statistics."""
  return (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


class ProcessRows(grain.MapDataset):
  """This process's contiguous block of rows of every global batch of `parent`."""

  def __init__(self, parent: grain.MapDataset, global_batch: int, process_index: int, process_count: int):
    super().__init__(parent)
    if global_batch % process_count:
      raise ValueError(f"global batch {global_batch} is not divisible by {process_count} processes")
    self._global_batch = global_batch
    self._rows = global_batch // process_count
    self._offset = process_index * self._rows

  def __len__(self) -> int:
    return len(self._parent) // self._global_batch * self._rows

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, row = divmod(index, self._rows)
    return self._parent[batch * self._global_batch + self._offset + row]

  def __str__(self) -> str:
    return f"ProcessRows(rows={self._rows}, offset={self._offset}, global_batch={self._global_batch})"


def image_shape(config) -> tuple[int, int]:
  """(H, W) of the network input: `config.image_size` square, or `image_height` x `image_size`."""
  return (config.image_height or config.image_size, config.image_size)


def sample_batch(config) -> dict:
  """Zeros with the shapes and types of one training example's image and label, as a batch of 1:
  what a method's `init_state` infers its variables from (no data is read)."""
  return {"image": np.zeros((1, *image_shape(config), 3), np.float32), "label": np.zeros((1,), np.int32)}


def train_transform(config) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
  """uint8 image, rng -> augmented uint8 image of `image_shape(config)`, by `config.data.augment`:
  "resize" (to the input size), "random_crop" (resize the shorter side to `data.resize_size`,
  then a random crop) or "random_resized_crop"; then a flip (`data.random_flip`) and colour
  jitter of strength `data.color_jitter` (0 = none)."""
  shape, data = image_shape(config), config.data

  def transform(image, rng):
    if data.augment == "random_resized_crop":
      image = augment.random_resized_crop(image, shape, rng)
    elif data.augment == "random_crop":
      image = augment.random_crop(augment.resize(image, data.resize_size), shape, rng)
    else:
      image = augment.resize(image, shape)
    if data.random_flip:
      image = augment.flip(image, rng)
    if data.color_jitter:
      image = augment.color_jitter(image, rng, data.color_jitter)
    return image

  return transform


def eval_transform(config) -> Callable[[np.ndarray], np.ndarray]:
  """uint8 image -> uint8 image of `image_shape(config)`: the shorter side resized to
  `data.resize_size` then the central crop when training crops, else a plain resize."""
  shape, data = image_shape(config), config.data
  if data.augment in ("random_crop", "random_resized_crop") and data.resize_size:
    return lambda image: augment.center_crop(augment.resize(image, data.resize_size), shape)
  return lambda image: augment.resize(image, shape)


def train_dataset(
    source: Any, *, train_classes: Sequence[int], global_batch: int, seed: int,
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] = augment.flip,
    classes_per_batch: int = 0, subset_size: int = 0, subset_epochs: int = 1, process_index: int = 0,
    process_count: int = 1, num_workers: int = 0, on_device: bool = False) -> grain.IterDataset:
  """Endless training batches for this process, deterministic given `seed`.

  Order: reshuffled every epoch; with `classes_per_batch` P > 0 the P x K identity sampling
  of `PKBatches` (K = global_batch / P); with `subset_size` > 0 the outer iterations of
  `SubsetEpochs` (`subset_epochs` passes over each random subset of `subset_size` examples).
  `transform(image, rng)` augments each uint8 image, seeded by its position in the stream. Labels are remapped to 0..len(train_classes)-1.
  Yields dicts of numpy arrays: `image` float32 `[b, H, W, 3]`, `label` int32 `[b]`, plus the
  source's other numeric fields. The iterator is checkpointable (`get_state` / `set_state`).
  `on_device`: no transform; images stay as the source gives them (uint8,
  `jaxret.data.decoded.DecodedImages`) and each example gets `position`, its place in the
  stream, from which `jaxret.data.device_augment` draws its augmentation.
  """
  lookup = {c: i for i, c in enumerate(train_classes)}

  def prepare(example, rng: np.random.Generator):
    # Numeric fields only: text (file names) cannot go onto devices.
    example = {k: v for k, v in example.items() if np.asarray(v).dtype.kind in "biuf"}
    example["image"] = normalize(transform(example["image"], rng))
    example["label"] = np.int32(lookup[int(example["label"])])
    return example

  def prepare_for_device(position: int, example):
    example = {k: v for k, v in example.items() if np.asarray(v).dtype.kind in "biuf"}
    example["label"] = np.int32(lookup[int(example["label"])])
    example["position"] = np.int64(position)
    return example

  if classes_per_batch and subset_size:
    raise ValueError(f"P x K sampling ({classes_per_batch} classes per batch) and subset epochs "
                     f"(subset_size={subset_size}) cannot be combined: expected one of them 0")
  if subset_size:
    ds = SubsetEpochs(grain.MapDataset.source(source), subset_size, subset_epochs, seed)
  elif classes_per_batch:
    if global_batch % classes_per_batch:
      raise ValueError(f"batch size {global_batch} is not a multiple of {classes_per_batch} classes per batch")
    ds = PKBatches(grain.MapDataset.source(source), labels_of(source), classes_per_batch,
                   global_batch // classes_per_batch, seed)
  else:
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  # before slicing: augmentation depends on the global position
  ds = ds.map_with_index(prepare_for_device) if on_device else ds.random_map(prepare, seed=seed)
  ds = ProcessRows(ds, global_batch, process_index, process_count)
  ds = ds.batch(global_batch // process_count, drop_remainder=True)
  # Decoded batches are copies of memory: a few read ahead suffice (grain's default, 500, held
  # 500 batches of 341 x 341 canvases, 5.5 GB, while the consumer was slower).
  ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4) if on_device else None)
  if num_workers:
    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (google/grain#1355): notebooks, tests
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return ds


def labels_of(source: Any) -> np.ndarray:
  """The class label of every example: from `source.labels` or a prepared source's `columns()`
  when it has them (no image decoding), else read example by example."""
  labels = getattr(source, "labels", None)
  if labels is None and hasattr(source, "columns"):
    labels = source.columns()["label"]
  if labels is None:
    labels = [source[i]["label"] for i in range(len(source))]
  return np.asarray(labels, np.int64)


class PKBatches(grain.MapDataset):
  """Endless P x K identity sampling for pairwise losses: batch b (examples b*P*K ..) holds P
  distinct classes drawn uniformly, K images each (drawn without replacement, or with
  replacement when a class has fewer than K), grouped by class.

  Batch b depends only on (seed, b), so any position of the stream is reproducible.
  """

  def __init__(self, parent: grain.MapDataset, labels: np.ndarray, p: int, k: int, seed: int):
    super().__init__(parent)
    classes, inverse = np.unique(labels, return_inverse=True)
    if p > len(classes) or p < 1 or k < 1:
      raise ValueError(f"P x K sampling with P={p} classes per batch and K={k} images: expected "
                       f"1 <= P <= {len(classes)} (the classes in the source) and K >= 1")
    self._members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    self._p, self._k, self._seed = p, k, seed
    self._last = (-1, np.zeros(0, np.int64))  # the batch read last: P * K reads per batch

  def __len__(self) -> int:
    return sys.maxsize

  def batch_indices(self, batch: int) -> np.ndarray:
    """Source indices of batch `batch`, `[P * K]`."""
    if self._last[0] != batch:
      rng = np.random.default_rng([self._seed, batch])
      chosen = rng.choice(len(self._members), self._p, replace=False)
      self._last = batch, np.concatenate([
          rng.choice(self._members[c], self._k, replace=len(self._members[c]) < self._k) for c in chosen])
    return self._last[1]

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, position = divmod(index, self._p * self._k)
    return self._parent[int(self.batch_indices(batch)[position])]

  def __str__(self) -> str:
    return f"PKBatches(P={self._p}, K={self._k}, seed={self._seed})"


class SubsetEpochs(grain.MapDataset):
  """Endless outer iterations (ADSH's training, A2-Net's Omega): iteration t draws `size` distinct
  examples uniformly (Omega_t), then reads them `epochs` times, each pass in a new random order;
  iteration t + 1 draws a new subset. Stream position p is example `order_{t,e}[i]` of Omega_t
  with `t, r = divmod(p, size * epochs)`, `e, i = divmod(r, size)`.

  Position p depends only on (seed, p), so any position of the stream is reproducible (the
  iterator's checkpoint is its position).
  """

  _STREAM = 0x5EB5E7  # separates these draws from the other uses of the seed

  def __init__(self, parent: grain.MapDataset, size: int, epochs: int, seed: int):
    super().__init__(parent)
    if not 1 <= size <= len(parent) or epochs < 1:
      raise ValueError(f"subset epochs with subset_size={size} and subset_epochs={epochs}: expected "
                       f"1 <= subset_size <= {len(parent)} (the examples in the source) and subset_epochs >= 1")
    self._size, self._epochs, self._seed = size, epochs, seed
    self._last = (-1, np.zeros(0, np.int64))  # the pass read last: `size` reads per pass

  def __len__(self) -> int:
    return sys.maxsize

  def subset(self, iteration: int) -> np.ndarray:
    """Omega of outer iteration `iteration`: `[size]` distinct source indices."""
    rng = np.random.default_rng([self._STREAM, self._seed, iteration])
    return rng.choice(len(self._parent), self._size, replace=False)

  def pass_indices(self, iteration: int, epoch: int) -> np.ndarray:
    """Source indices of pass `epoch` over Omega of outer iteration `iteration`, in reading order."""
    if self._last[0] != (iteration, epoch):
      order = np.random.default_rng([self._STREAM, self._seed, iteration, epoch + 1]).permutation(self._size)
      self._last = (iteration, epoch), self.subset(iteration)[order]
    return self._last[1]

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    iteration, rest = divmod(index, self._size * self._epochs)
    epoch, position = divmod(rest, self._size)
    return self._parent[int(self.pass_indices(iteration, epoch)[position])]

  def __str__(self) -> str:
    return f"SubsetEpochs(size={self._size}, epochs={self._epochs}, seed={self._seed})"


class Padded(grain.MapDataset):
  """`parent` padded with copies of its first example to a multiple of `multiple`; adds `valid`."""

  def __init__(self, parent: grain.MapDataset, multiple: int):
    super().__init__(parent)
    self._size = len(parent)
    self._length = -(-self._size // multiple) * multiple

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    example = dict(self._parent[index if index < self._size else 0])
    example["valid"] = np.bool_(index < self._size)
    return example

  def __str__(self) -> str:
    return f"Padded(size={self._size}, length={self._length})"


def eval_dataset(
    source: Any, *, global_batch: int, transform: Callable[[np.ndarray], np.ndarray] | None = None,
    process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Every example of `source` once, in order, in batches padded with `valid=False` rows;
  images through `transform` (uint8 -> uint8), then normalised."""

  def prepare(example):
    example = dict(example)
    image = example["image"]
    example["image"] = normalize(transform(image) if transform else image)
    return example

  ds = Padded(grain.MapDataset.source(source).map(prepare), global_batch)
  ds = ProcessRows(ds, global_batch, process_index, process_count)
  return ds.batch(global_batch // process_count, drop_remainder=True)
