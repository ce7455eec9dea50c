"""jaxret's TFDS builders: published datasets read from a local `manual_dir`, no TensorFlow.

    summary = prepare("market1501", manual_dir="/data/raw", data_dir="/data/tfds")
    train = load_split("market1501", "/data/tfds", "train")
    example = train[0]   # {"image": uint8 [H, W, 3], "label": int32, "camera": int32, ...}

`prepare` reads the dataset in its published layout (each builder's module docstring shows
it), decodes every image once to check it, and writes a TFDS folder `data_dir/TFDS_NAME/1.0.0`
(ArrayRecord shards, dataset_info.json, features.json, metadata.json) that
`tfds.data_source(TFDS_NAME, data_dir=...)` reads as well. Images are stored as their original
encoded bytes and decoded with PIL when read. `BUILDERS[name].name` is the TFDS name: the same
as `name` except Fashion-MNIST's (`jaxret_fashion_mnist`, apart from TFDS's own
`fashion_mnist`).

A bad image or annotation line raises `BadExampleError` naming its file (and line); with
`skip_bad_examples=True` it is skipped, logged, counted in the summary's `"skipped"` and listed
in its `"skipped_examples"` (and in the dataset's metadata.json). A split's own `"skipped"`
counts the problems known to belong to it (a bad line of a table shared by all splits, such as
CUB's images.txt, counts only in the total).
"""
import os
from typing import Any

from jaxret.data.builders.builder import Builder
from jaxret.data.builders.compcars import CompCars
from jaxret.data.builders.cub import CUB
from jaxret.data.builders.dukemtmc_reid import DukeMTMCReid
from jaxret.data.builders.fashion_mnist import FashionMNIST
from jaxret.data.builders.fgvc_aircraft import FGVCAircraft
from jaxret.data.builders.inshop import InShop
from jaxret.data.builders.market1501 import Market1501
from jaxret.data.builders.nabirds import NABirds
from jaxret.data.builders.preparation import prepare_dataset
from jaxret.data.builders.problems import BadExampleError
from jaxret.data.builders.source import DatasetNotPreparedError, PreparedSource, prepared_path
from jaxret.data.builders.vegfru import VegFru

BUILDERS: dict[str, type[Builder]] = {
    "market1501": Market1501,
    "dukemtmc_reid": DukeMTMCReid,
    "fgvc_aircraft": FGVCAircraft,
    "inshop": InShop,
    "nabirds": NABirds,
    "vegfru": VegFru,
    "compcars": CompCars,
    "cub": CUB,
    "fashion_mnist": FashionMNIST,
}

__all__ = ["BUILDERS", "BadExampleError", "DatasetNotPreparedError", "PreparedSource", "load_split", "prepare"]


def _builder(name: str) -> type[Builder]:
  if name not in BUILDERS:
    raise ValueError(f"dataset {name!r} has no jaxret builder: expected one of {sorted(BUILDERS)}")
  return BUILDERS[name]


def prepare(name: str, manual_dir: os.PathLike | str, data_dir: os.PathLike | str, *,
            skip_bad_examples: bool = False, workers: int = 1) -> dict[str, Any]:
  """Builds dataset `name` from `manual_dir` into `data_dir` (replacing an earlier build).

  Args:
    name: a key of `BUILDERS`.
    manual_dir: the downloaded dataset in its published layout.
    data_dir: the TFDS data folder.
    skip_bad_examples: skip (and count) bad images and annotation lines instead of raising.
    workers: processes that decode images to check them; 1 (default) checks them in this
      process. A launcher should pass `os.cpu_count()`: about that many times faster on large
      datasets, from a script guarded by `if __name__ == "__main__":` (spawned workers).
  Returns:
    `{"dataset": name, "path": folder written, "splits": {SPLIT: {"images": N, "classes": N,
    "cameras": N, "attributes": N, "skipped": N}}, "skipped": N, "skipped_examples": [...]}`;
    `cameras` / `attributes` are 0 for datasets without them.
  Raises:
    BadExampleError: a bad image or annotation line (file and line in the message).
    FileNotFoundError: `manual_dir` does not hold the dataset's layout.
  """
  summary = prepare_dataset(_builder(name)(), manual_dir, data_dir, skip_bad_examples=skip_bad_examples,
                            workers=workers)
  return dict(summary, dataset=name)


def load_split(name: str, data_dir: os.PathLike | str, split: str) -> PreparedSource:
  """The prepared examples of `split` ("train", "query", ... or several joined by "+").

  Returns:
    A random-access source: `len(source)`, `source[i] -> {"image": uint8 [H, W, 3], "label":
    int32, "index": int32, "filename": str, ...}`, `source.columns()`, `source.metadata`.
  Raises:
    DatasetNotPreparedError: `data_dir` has no prepared `name`; the message gives the
      `python -m launch.prepare_data ...` command to run.
  """
  builder = _builder(name)
  return PreparedSource(prepared_path(name, builder.name, builder.version, data_dir, builder.layout), split)
