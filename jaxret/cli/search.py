"""Finds the k images of an index (`jaxret-embed`) nearest to query images.

  jaxret-search --index index.npz --query IMG [--query IMG ...] --k 10 [--html out.html] [--png out.png]
  (from a checkout: python -m launch.search ...)

Each query is embedded by the run that built the index (its workdir and checkpoint, read from the
index; --workdir and --checkpoint override them) and searched with the evaluation k-NN
(`jaxret.eval.knn`: the run's metric, cosine by default, or Hamming distance between packed codes
for hashing runs), the index scanned --chunk items at a time. Prints, per query, one line per
neighbour: rank, similarity or distance, path. --html writes a self-contained page (thumbnails
inlined), --png the retrieval grid; with --folder_labels an image's label is the name of its folder
and neighbours are framed green (same label as the query) or red.
"""
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np
from absl import flags

from jaxret.cli import command
from jaxret.user_errors import InputError

FLAGS = flags.FlagValues()
_INDEX = flags.DEFINE_string("index", None, ".npz written by jaxret-embed.", flag_values=FLAGS)
_QUERY = flags.DEFINE_multi_string("query", None, "Query image file (repeat the flag for more).", flag_values=FLAGS)
_K = flags.DEFINE_integer("k", 10, "Neighbours per query.", lower_bound=1, flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run that embeds the queries (default: the index's).",
                               flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", None, ("latest", "best"), "Default: the index's.", flag_values=FLAGS)
_CHUNK = flags.DEFINE_integer("chunk", 4096, "Index items scored per k-NN step.", lower_bound=1, flag_values=FLAGS)
_HTML = flags.DEFINE_string("html", None, "Write the results as a self-contained HTML page.", flag_values=FLAGS)
_PNG = flags.DEFINE_string("png", None, "Write the retrieval grid as a PNG.", flag_values=FLAGS)
_FOLDER_LABELS = flags.DEFINE_bool("folder_labels", False, "Label = name of the image's folder: frame "
                                   "neighbours green (same label as the query) or red.", flag_values=FLAGS)
_THUMB = flags.DEFINE_integer("thumb", 96, "Thumbnail side in pixels (--png, --html).", lower_bound=8,
                              flag_values=FLAGS)
flags.mark_flags_as_required(["index", "query"], flag_values=FLAGS)


def folder_label(path: str) -> str:
  """The name of the folder holding `path`."""
  return os.path.basename(os.path.dirname(os.path.abspath(path)))


def _search(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: each query image is a --query flag")
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax chatter about the read-only checkpoint folder
  from jaxret import image_index, saved_run  # pylint: disable=import-outside-toplevel  (JAX after the flags)
  from jaxret.data import image_folder  # pylint: disable=import-outside-toplevel
  query_paths = _QUERY.value
  try:
    index = image_index.load(_INDEX.value)
    queries = [image_folder.read_image(path) for path in query_paths]  # a bad query fails before restoring
    run = saved_run.restore(_WORKDIR.value or index.workdir, _CHECKPOINT.value or index.checkpoint)
    for warning in image_index.check_compatible(index, _INDEX.value, run, image_index.embedding_dim(run)):
      print(f"warning: {warning}", file=sys.stderr)
    vectors, _ = image_index.embed_files(run, "", [os.path.abspath(p) for p in query_paths], progress=False)
    k = min(_K.value, len(index.paths))
    neighbours = image_index.search(index, vectors, k=k, chunk=_CHUNK.value)
  except ValueError as e:  # a missing or unreadable index, image or run; an incompatible index
    raise InputError(str(e)) from e
  values, value_name = image_index.distances(neighbours.scores, index.metric)
  paths = index.paths[neighbours.indices]
  value_format = "{:.0f}" if index.metric == "hamming" else "{:.4f}"
  for q, query_path in enumerate(query_paths):
    print(f"query {query_path}: rank, {value_name}, path")
    for rank in range(k):
      print(f"{rank + 1}\t{value_format.format(values[q, rank])}\t{paths[q, rank]}")
  if _HTML.value or _PNG.value:
    root = index.image_root
    images = [[image_folder.read_image(os.path.join(root, p)) for p in row] for row in paths]
    correct = None
    if _FOLDER_LABELS.value:
      labels = np.vectorize(lambda p: folder_label(os.path.join(root, p)))(paths)
      correct = labels == np.array([folder_label(p) for p in query_paths])[:, None]
    if _PNG.value:
      from jaxret.viz import retrieval_grid  # pylint: disable=import-outside-toplevel  (matplotlib only here)
      retrieval_grid.save_retrieval_grid(_PNG.value, queries, images, values, correct=correct,
                                         score_format=value_format, thumb=_THUMB.value)
    if _HTML.value:
      from jaxret.viz import retrieval_page  # pylint: disable=import-outside-toplevel
      captions = [[value_format.format(v) for v in row] for row in values]
      page = retrieval_page.retrieval_page(query_paths, queries, paths, images, captions, correct=correct,
                                           thumb=_THUMB.value, title=f"{index.method}: {value_name}")
      with open(_HTML.value, "w", encoding="utf-8") as f:
        f.write(page)


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_search, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-search` console script."""
  from jaxret.training import distributed  # pylint: disable=import-outside-toplevel
  distributed.cpu_xla_flags()
  sys.exit(main())
