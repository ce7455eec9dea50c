"""Builds a dataset from its published layout into a TFDS data folder, then prints a summary.

  jaxret-prepare-data --dataset market1501 --manual_dir /data/raw --data_dir /data/tfds
  (from a checkout: python -m launch.prepare_data ...)

Prints one JSON line: {"dataset": NAME, "splits": {SPLIT: {"images": N, "classes": N,
"cameras": N, "attributes": N, "skipped": N}}, "skipped": N}. Training configs then read it with
`--config.data_dir=/data/tfds`. A bad image or annotation line stops with its file and line;
`--skip_bad_examples` skips and counts them instead.
"""
import json
import logging
import os
import sys
from collections.abc import Sequence

from absl import flags

from jaxret.cli import command
from jaxret.data import builders

FLAGS = flags.FlagValues()
_DATASET = flags.DEFINE_enum("dataset", None, sorted(builders.BUILDERS), "Dataset to build.", flag_values=FLAGS)
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The downloaded dataset, in its published layout.",
                                  flag_values=FLAGS)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data folder to write (config.data_dir).", flag_values=FLAGS)
_SKIP = flags.DEFINE_bool("skip_bad_examples", False, "Skip and count bad images / annotation lines.",
                          flag_values=FLAGS)
flags.mark_flags_as_required(["dataset", "manual_dir", "data_dir"], flag_values=FLAGS)


def _prepare(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  logging.getLogger().setLevel(logging.WARNING)
  summary = builders.prepare(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value,
                             skip_bad_examples=_SKIP.value, workers=os.cpu_count() or 1)
  print(json.dumps({"dataset": summary["dataset"], "splits": summary["splits"], "skipped": summary["skipped"]}))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_prepare, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-prepare-data` console script."""
  sys.exit(main())
