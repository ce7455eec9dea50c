"""Embeds every image of a folder with a trained run and saves a search index (.npz).

  python -m launch.embed --workdir RUN --images DIR --out index.npz [--checkpoint best]

RUN is a `launch.train` workdir: its config.json and its latest checkpoint (or, with
--checkpoint best, its best validation model). Images are found recursively (jpg, png, bmp, gif,
webp, tiff, ppm), sorted, and resized like the run's evaluation images. The .npz holds `vectors`
(float32 embeddings, or for hashing runs packed uint8 hash codes), `paths` relative to DIR and
metadata (method, kind, dim, metric, config_fingerprint, workdir, checkpoint_step, image_root);
`python -m launch.search` queries it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m launch.embed", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="the training run's --workdir")
  parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
  parser.add_argument("--out", required=True, help="index .npz to write")
  parser.add_argument("--checkpoint", default="latest", choices=("latest", "best"),
                      help="the run's latest checkpoint or its best validation model")
  parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  """Writes the index and prints one JSON line describing it."""
  args = parse_args(argv)
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax chatter about the read-only checkpoint folder
  from jaxret.data import image_folder  # pylint: disable=import-outside-toplevel  (jax after flags parse)
  from jaxret import image_index
  from jaxret import saved_run
  try:
    image_folder.list_images(args.images)  # a bad folder or output fails before the model is restored
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
      raise ValueError(f"--out {args.out!r}: its folder {os.path.dirname(os.path.abspath(args.out))!r} does not exist")
    run = saved_run.restore(args.workdir, args.checkpoint)
    index = image_index.build(run, args.images, progress=args.progress)
    image_index.save(index, args.out)
  except ValueError as e:
    raise SystemExit(f"error: {e}") from e
  print(json.dumps({"out": args.out, "images": len(index.paths), "method": index.method, "kind": index.kind,
                    "dim": index.dim, "checkpoint_step": index.checkpoint_step}))
  return 0


if __name__ == "__main__":
  from jaxret.training import distributed
  distributed.cpu_xla_flags()
  sys.exit(main())
