"""Finds the k images of an index (launch.embed) nearest to query images.

  python -m launch.search --index index.npz --query IMG [IMG ...] -k 10 [--html out.html] [--png out.png]

Each query is embedded by the run that built the index (its workdir and checkpoint, read from the
index; --workdir and --checkpoint override them) and searched with the evaluation k-NN
(`jaxret.eval.knn`: the run's metric, cosine by default, or Hamming distance between packed codes
for hashing runs), the index scanned --chunk items at a time. Prints, per query, one line per
neighbour: rank, similarity or distance, path. --html writes a self-contained page (thumbnails
inlined), --png the retrieval grid; with --folder-labels an image's label is the name of its folder
and neighbours are framed green (same label as the query) or red.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m launch.search", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--index", required=True, help=".npz written by launch.embed")
  parser.add_argument("--query", required=True, nargs="+", help="query image file(s)")
  parser.add_argument("-k", "--k", type=int, default=10, help="neighbours per query")
  parser.add_argument("--workdir", help="run that embeds the queries (default: the index's)")
  parser.add_argument("--checkpoint", choices=("latest", "best"), help="(default: the index's)")
  parser.add_argument("--chunk", type=int, default=4096, help="index items scored per k-NN step")
  parser.add_argument("--html", help="write the results as a self-contained HTML page")
  parser.add_argument("--png", help="write the retrieval grid as a PNG")
  parser.add_argument("--folder-labels", dest="folder_labels", action="store_true",
                      help="label = name of the image's folder: frame neighbours green/red")
  parser.add_argument("--thumb", type=int, default=96, help="thumbnail side in pixels (--png, --html)")
  args = parser.parse_args(argv)
  if args.k < 1 or args.chunk < 1:
    parser.error(f"-k and --chunk must be positive; got -k {args.k} --chunk {args.chunk}")
  return args


def folder_label(path: str) -> str:
  """The name of the folder holding `path`."""
  return os.path.basename(os.path.dirname(os.path.abspath(path)))


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax chatter about the read-only checkpoint folder
  from jaxret.data import image_folder  # pylint: disable=import-outside-toplevel  (jax after flags parse)
  from jaxret import image_index
  from jaxret import saved_run
  try:
    index = image_index.load(args.index)
    queries = [image_folder.read_image(path) for path in args.query]  # a bad query fails before restoring
    run = saved_run.restore(args.workdir or index.workdir, args.checkpoint or index.checkpoint)
    for warning in image_index.check_compatible(index, args.index, run, image_index.embedding_dim(run)):
      print(f"warning: {warning}", file=sys.stderr)
    vectors, _ = image_index.embed_files(run, "", [os.path.abspath(p) for p in args.query], progress=False)
    k = min(args.k, len(index.paths))
    neighbours = image_index.search(index, vectors, k=k, chunk=args.chunk)
  except ValueError as e:
    raise SystemExit(f"error: {e}") from e
  values, value_name = image_index.distances(neighbours.scores, index.metric)
  paths = index.paths[neighbours.indices]
  value_format = "{:.0f}" if index.metric == "hamming" else "{:.4f}"
  for q, query_path in enumerate(args.query):
    print(f"query {query_path}: rank, {value_name}, path")
    for rank in range(k):
      print(f"{rank + 1}\t{value_format.format(values[q, rank])}\t{paths[q, rank]}")
  if args.html or args.png:
    root = index.image_root
    images = [[image_folder.read_image(os.path.join(root, p)) for p in row] for row in paths]
    correct = None
    if args.folder_labels:
      labels = np.vectorize(lambda p: folder_label(os.path.join(root, p)))(paths)
      correct = labels == np.array([folder_label(p) for p in args.query])[:, None]
    if args.png:
      from jaxret.viz import retrieval_grid  # pylint: disable=import-outside-toplevel  (matplotlib only here)
      retrieval_grid.save_retrieval_grid(args.png, queries, images, values, correct=correct, score_format=value_format,
                                         thumb=args.thumb)
    if args.html:
      from jaxret.viz import retrieval_page  # pylint: disable=import-outside-toplevel
      captions = [[value_format.format(v) for v in row] for row in values]
      page = retrieval_page.retrieval_page(args.query, queries, paths, images, captions, correct=correct,
                                           thumb=args.thumb, title=f"{index.method}: {value_name}")
      with open(args.html, "w", encoding="utf-8") as f:
        f.write(page)
  return 0


if __name__ == "__main__":
  from jaxret.training import distributed
  distributed.cpu_xla_flags()
  sys.exit(main())
