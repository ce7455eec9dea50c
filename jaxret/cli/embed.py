"""Embeds every image of a folder with a trained run and saves a search index (.npz).

  jaxret-embed --workdir RUN --images DIR --out index.npz [--checkpoint best]
  (from a checkout: python -m launch.embed ...)

RUN is a `jaxret-train` workdir: its config.json and its latest checkpoint (or, with
--checkpoint best, its best validation model). Images are found recursively (jpg, png, bmp, gif,
webp, tiff, ppm), sorted, and resized like the run's evaluation images. The .npz holds `vectors`
(float32 embeddings, or for hashing runs packed uint8 hash codes), `paths` relative to DIR and
metadata (method, kind, dim, metric, config_fingerprint, workdir, checkpoint_step, image_root);
`jaxret-search` queries it. Prints one JSON line describing it.
"""
import json
import logging
import os
import sys
from collections.abc import Sequence

from absl import flags

from jaxret.cli import command
from jaxret.user_errors import InputError

FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run's --workdir.", flag_values=FLAGS)
_IMAGES = flags.DEFINE_string("images", None, "Folder of images (searched recursively).", flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Index .npz to write.", flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "latest", ("latest", "best"),
                                "The run's latest checkpoint or its best validation model.", flag_values=FLAGS)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress (--noprogress: none).", flag_values=FLAGS)
flags.mark_flags_as_required(["workdir", "images", "out"], flag_values=FLAGS)


def _embed(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax chatter about the read-only checkpoint folder
  from jaxret import image_index, saved_run  # pylint: disable=import-outside-toplevel  (JAX after the flags)
  from jaxret.data import image_folder  # pylint: disable=import-outside-toplevel
  out = _OUT.value
  try:
    image_folder.list_images(_IMAGES.value)  # a bad folder or output fails before the model is restored
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
      raise ValueError(f"--out {out!r}: its folder {os.path.dirname(os.path.abspath(out))!r} does not exist")
    run = saved_run.restore(_WORKDIR.value, _CHECKPOINT.value)
    index = image_index.build(run, _IMAGES.value, progress=_PROGRESS.value)
    image_index.save(index, out)
  except ValueError as e:  # a missing or unreadable run, folder, image or output path
    raise InputError(str(e)) from e
  print(json.dumps({"out": out, "images": len(index.paths), "method": index.method, "kind": index.kind,
                    "dim": index.dim, "checkpoint_step": index.checkpoint_step}))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_embed, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-embed` console script."""
  from jaxret.training import distributed  # pylint: disable=import-outside-toplevel
  distributed.cpu_xla_flags()
  sys.exit(main())
