"""Draws a run's training curves (loss, learning rate, evaluation metrics per split, speed) as a PNG.

  jaxret-plot-curves --workdir RUN --out curves.png
  (from a checkout: python -m launch.plot_curves ...)

Reads RUN/metrics.jsonl (written by jaxret-train, also while it runs); see jaxret.viz.training_curves.
"""
import sys
from collections.abc import Sequence

from absl import flags

from jaxret.cli import command
from jaxret.user_errors import InputError

FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's --workdir (or its metrics.jsonl).", flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "PNG to write.", flag_values=FLAGS)
flags.mark_flags_as_required(["workdir", "out"], flag_values=FLAGS)


def _plot(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  from jaxret.viz import training_curves  # pylint: disable=import-outside-toplevel  (matplotlib only here)
  try:
    names = training_curves.plot_training_curves(_WORKDIR.value, _OUT.value)
  except ValueError as e:  # no metrics file, or one without lines
    raise InputError(str(e)) from e
  print(f"wrote {_OUT.value}: {', '.join(names)}")


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_plot, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-plot-curves` console script."""
  sys.exit(main())
