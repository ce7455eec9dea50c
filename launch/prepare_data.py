"""Builds a dataset from its published layout into a TFDS data folder, then prints a summary.

  python -m launch.prepare_data --dataset market1501 --manual_dir /data/raw --data_dir /data/tfds

Prints one JSON line: {"dataset": NAME, "splits": {SPLIT: {"images": N, "classes": N,
"cameras": N, "attributes": N, "skipped": N}}, "skipped": N}. Training configs then read it with
`--config.data_dir=/data/tfds`. A bad image or annotation line stops with its file and line;
`--skip_bad_examples` skips and counts them instead.
"""
import json
import logging
import os

from absl import flags

from jaxret import user_errors
from jaxret.data import builders

_DATASET = flags.DEFINE_enum("dataset", None, sorted(builders.BUILDERS), "Dataset to build.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The downloaded dataset, in its published layout.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data folder to write (config.data_dir).")
_SKIP = flags.DEFINE_bool("skip_bad_examples", False, "Skip and count bad images / annotation lines.")
flags.mark_flags_as_required(["dataset", "manual_dir", "data_dir"])


def main(argv):
  del argv
  logging.getLogger().setLevel(logging.WARNING)
  summary = builders.prepare(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value,
                             skip_bad_examples=_SKIP.value, workers=os.cpu_count() or 1)
  print(json.dumps({"dataset": summary["dataset"], "splits": summary["splits"], "skipped": summary["skipped"]}))


if __name__ == "__main__":
  user_errors.run(main)
