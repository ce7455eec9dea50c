"""Exports a trained run's embedding for serving: serialised StableHLO (jax.export).

  jaxret-export --workdir RUN --out model.stablehlo [--checkpoint best]
  (from a checkout: python -m launch.export ...)

RUN is a `jaxret-train` workdir: its config.json and its latest checkpoint (or, with
--checkpoint best, its best validation model). --out gets the program uint8 images [b, H, W, 3]
(any batch b; H, W the run's evaluation size) -> float32 embeddings [b, D]: evaluation's
normalisation and the run's embed_fn, its parameters baked in, lowered for cpu and cuda. Beside it,
<out>.json holds the metadata (input shape, dim, method, metric, hash_codes, checkpoint step, jax
version). `jaxret.exported_embedding.ExportedEmbedding.load(out)` serves it with JAX alone.
Prints one JSON line describing it.
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
_OUT = flags.DEFINE_string("out", None, "Serialised program to write (and <out>.json beside it).",
                           flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "latest", ("latest", "best"),
                                "The run's latest checkpoint or its best validation model.", flag_values=FLAGS)
flags.mark_flags_as_required(["workdir", "out"], flag_values=FLAGS)


def _export(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  logging.getLogger("absl").setLevel(logging.ERROR)  # orbax chatter about the read-only checkpoint folder
  from jaxret import export, saved_run  # pylint: disable=import-outside-toplevel  (JAX after the flags)
  out = _OUT.value
  try:
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):  # fails before the model is restored
      raise ValueError(f"--out {out!r}: its folder {folder!r} does not exist")
    run = saved_run.restore(_WORKDIR.value, _CHECKPOINT.value)
    info = export.export_run(run, out)
  except ValueError as e:  # a missing or unreadable run, or output path
    raise InputError(str(e)) from e
  print(json.dumps({"out": out, "method": info["method"], "dim": info["output_dim"],
                    "input_shape": info["input_shape"], "bytes": info["bytes"], "platforms": info["platforms"],
                    "checkpoint_step": info["checkpoint_step"]}))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_export, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-export` console script."""
  from jaxret.training import distributed  # pylint: disable=import-outside-toplevel
  distributed.cpu_xla_flags()
  sys.exit(main())
