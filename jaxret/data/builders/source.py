"""Reading a prepared split: a random-access source that decodes images with PIL (no TensorFlow)."""
import os
import pathlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxret.data.builders import image_bytes
from jaxret.user_errors import UserError


class DatasetNotPreparedError(UserError, FileNotFoundError):
  """The dataset folder under `data_dir` is missing: the message gives the command to run."""


def prepared_path(name: str, tfds_name: str, version: str, data_dir: os.PathLike | str, layout: str) -> pathlib.Path:
  """`data_dir/tfds_name/version`, or DatasetNotPreparedError telling how to prepare it."""
  path = pathlib.Path(data_dir) / tfds_name / version
  if not (path / "dataset_info.json").exists():
    others = sorted(p.name for p in path.parent.iterdir() if p.is_dir()) if path.parent.is_dir() else []
    found = f" (found only {others} in {path.parent})" if others else ""
    raise DatasetNotPreparedError(
        f"dataset {name!r} is not prepared in data_dir={os.fspath(data_dir)}: {path}/dataset_info.json does not "
        f"exist{found}. Run `python -m launch.prepare_data --dataset {name} --manual_dir RAW "
        f"--data_dir {os.fspath(data_dir)}`, with RAW the folder holding {layout}")
  return path


class PreparedSource:
  """The examples of one prepared split (grain `RandomAccessDataSource` protocol).

  `source[i]` is a dict with `image` uint8 `[H, W, 3]` (RGB, decoded with PIL, cropped when
  the dataset stores a `crop` box), `label` int32, `index` int32 (= i), `filename` str, and the
  dataset's other fields (`camera` int32, `attributes` int32 `[A]`, ...) as numpy values.

  Attributes:
    path: the prepared dataset folder.
    split: a split name, or several joined by "+" (e.g. "train+val"), read in that order.
    metadata: the dataset's metadata.json (`attribute_names`, `attribute_sizes`, ...).
  """

  def __init__(self, path: pathlib.Path, split: str):
    self.path, self.split = pathlib.Path(path), split
    builder = tfds.builder_from_directory(os.fspath(self.path))
    parts = split.split("+")
    unknown = [p for p in parts if p not in builder.info.splits]
    if unknown:
      raise ValueError(f"split={split!r}: {unknown} not in {self.path} (expected one of "
                       f"{sorted(builder.info.splits)}, or several joined by '+')")
    self.metadata: dict[str, Any] = dict(builder.info.metadata or {})
    self._dtypes = {key: feature.np_dtype for key, feature in builder.info.features.items()}
    self._parts = parts
    self._source = builder.as_data_source(split=split)

  def __len__(self) -> int:
    return len(self._source)

  def _decode(self, record: dict[str, Any], index: int) -> dict[str, Any]:
    example = {}
    for key, value in record.items():
      if key in ("image", "crop"):
        continue
      example[key] = value.decode("utf-8") if isinstance(value, bytes) else np.asarray(value, self._dtypes[key])
    example["image"] = image_bytes.decode_rgb(record["image"], record.get("crop"))
    example["index"] = np.int32(index)
    return example

  def _position(self, index: int) -> int:
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {self!r}")
    return index % len(self)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = self._position(index)
    return self._decode(self._source[index], index)

  def __getitems__(self, indices) -> list[dict[str, Any]]:
    """Several examples at once (grain reads batches of records this way)."""
    indices = [self._position(i) for i in indices]
    return [self._decode(r, i) for r, i in zip(self._source.__getitems__(indices), indices)]

  def columns(self) -> dict[str, np.ndarray]:
    """Every non-image field of the split as one array (`label` `[N]`, `attributes` `[N, A]`,
    `filename` `[N]` str, ...), read without touching any image."""
    parts = []
    for part in self._parts:
      with np.load(self.path / "columns" / f"{part}.npz") as arrays:
        parts.append({key: arrays[key] for key in arrays.files})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

  def __repr__(self) -> str:
    return f"PreparedSource({os.fspath(self.path)!r}, split={self.split!r}, {len(self)} examples)"
