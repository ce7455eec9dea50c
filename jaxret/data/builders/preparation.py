"""Preparation: annotations -> checked images -> TFDS ArrayRecord files -> summary."""
from collections.abc import Iterator
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import pathlib
from typing import Any

import numpy as np

from jaxret.data.builders import image_bytes
from jaxret.data.builders.builder import Builder, Example
from jaxret.data.builders.problems import Problems
from jaxret.data.builders.writer import DatasetWriter
from jaxret.progress import Progress

log = logging.getLogger(__name__)

# Examples checked per round; a round is spread over the worker processes, then written in order.
CHUNK = 1024
# Fewer examples than this are checked in this process (starting workers costs about a second).
PARALLEL_MIN = 2000


def _check(image: pathlib.Path | bytes) -> tuple[tuple[int, int] | None, str | None]:
  """((height, width), None) for a readable image, else (None, what is wrong). Runs in workers."""
  try:
    data = image if isinstance(image, bytes) else image.read_bytes()
  except OSError as e:
    return None, f"expected an image file, cannot read it ({e.strerror})"
  try:
    return image_bytes.check(data), None
  except ValueError as e:
    return None, str(e)


def _place(example: Example) -> str:
  """Where an example's image is: its file, or its name inside the file that packs it."""
  return example.filename if isinstance(example.image, bytes) else os.fspath(example.image)


def _checked(examples: list[Example], pool: concurrent.futures.Executor | None
             ) -> Iterator[tuple[Example, tuple[int, int] | None, str | None]]:
  """`(example, (height, width), problem)` for each example, in order; `problem` names the file."""
  for start in range(0, len(examples), CHUNK):
    chunk = examples[start:start + CHUNK]
    images = [e.image for e in chunk]
    results = pool.map(_check, images, chunksize=16) if pool is not None else map(_check, images)
    for example, (size, problem) in zip(chunk, results):
      if problem is not None:
        origin = f" (listed at {example.origin})" if example.origin else ""
        problem = f"{_place(example)}: {problem}{origin}"
      yield example, size, problem


def _split_summary(columns: dict[str, list[Any]], skipped: int) -> dict[str, int]:
  labels = columns.get("label", [])
  attributes = columns.get("attributes")
  return {
      "images": len(labels),
      "classes": len(set(int(v) for v in labels)),
      "cameras": len(set(int(v) for v in columns["camera"])) if "camera" in columns else 0,
      "attributes": int(np.shape(attributes[0])[0]) if attributes else 0,
      "skipped": skipped,
  }


def prepare_dataset(builder: Builder, manual_dir: os.PathLike | str, data_dir: os.PathLike | str, *,
                    skip_bad_examples: bool = False, workers: int = 1) -> dict[str, Any]:
  """Reads `manual_dir` with `builder`, checks every image and writes `data_dir/NAME/VERSION`.

  Args:
    builder: the dataset's builder.
    manual_dir: the downloaded dataset, in its published layout.
    data_dir: the TFDS data folder to write into.
    skip_bad_examples: False raises `BadExampleError` (naming file and line) on the first bad
      image or annotation line; True skips such examples and counts them in the summary.
    workers: processes that decode images to check them (decoding is most of the time; PIL
      holds the GIL, so threads would not help). 1: all in this process. More start "spawn"
      worker processes (safe beside JAX, unlike fork), which, like any multiprocessing, needs
      a calling script guarded by `if __name__ == "__main__":`. Datasets of fewer than
      `PARALLEL_MIN` images are always checked in this process.
  Returns:
    `{"dataset", "path", "splits": {SPLIT: {"images", "classes", "cameras", "attributes",
    "skipped"}}, "skipped": N, "skipped_examples": [message, ...]}`.
  """
  manual_dir = pathlib.Path(manual_dir)
  if not manual_dir.is_dir():
    raise FileNotFoundError(f"manual_dir={manual_dir} is not a folder: expected {builder.layout}")
  problems = Problems(skip=skip_bad_examples)
  layout = builder.read(manual_dir, problems)
  total = sum(len(examples) for examples in layout.splits.values())
  with contextlib.ExitStack() as stack:
    pool = None
    if workers > 1 and total >= PARALLEL_MIN:
      pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
      stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    writer = stack.enter_context(
        DatasetWriter(pathlib.Path(data_dir), builder.name, builder.version, builder.features()))
    summaries = {}
    for split in builder.splits:
      log.info("%s: preparing split %s (%d images)", builder.name, split, len(layout.splits[split]))
      split_writer = writer.split(split)
      progress = stack.enter_context(Progress(len(layout.splits[split]), f"{builder.name} {split}", "images"))
      for example, size, problem in _checked(layout.splits[split], pool):
        progress.update()
        if problem is None:
          try:
            data = example.image if isinstance(example.image, bytes) else example.image.read_bytes()
            fields = builder.finish(example.fields, *size)
          except (OSError, ValueError) as e:
            problem = f"{_place(example)}: {e}"
        if problem is not None:
          problems.report(problem, split)
          continue
        split_writer.write({"image": data, "filename": example.filename, **fields})
      skipped = problems.skipped_by_split.get(split, 0)
      if not split_writer.shard_lengths:
        raise ValueError(f"{builder.name}: split {split!r} has no usable examples in {manual_dir} "
                         f"({skipped} skipped): expected {builder.layout}")
      summaries[split] = _split_summary(split_writer.columns, skipped)
    metadata = dict(layout.metadata, skipped_examples=list(problems.messages))
    path = writer.finish(description=(builder.__doc__ or builder.name).strip(), metadata=metadata)
  return {"dataset": builder.name, "path": os.fspath(path), "splits": summaries,
          "skipped": len(problems), "skipped_examples": list(problems.messages)}
