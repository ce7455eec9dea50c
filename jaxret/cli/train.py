"""Trains a method from an ml_collections config and evaluates it.

  jaxret-train --config configs/baseline.py:dataset=synthetic --workdir /tmp/run --config.total_steps=50
  (from a checkout: python -m launch.train ...)

Rerunning with the same --workdir resumes from its latest checkpoint. Multi-host: start one
process per host with --coordinator_address/--num_processes/--process_id, or under SLURM /
Open MPI where they are detected (see launch/slurm.sbatch and launch/local_multiprocess.sh).
Prints the test metrics as one JSON line.
"""
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from absl import flags
from ml_collections import config_flags

from jaxret.cli import command
from jaxret.training import distributed

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/baseline.py:dataset=synthetic.",
                                          flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics; resumed if it has any.",
                               flag_values=FLAGS)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).",
                                   flag_values=FLAGS)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).", flag_values=FLAGS)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).", flag_values=FLAGS)
_START_OVER = flags.DEFINE_bool("start_over", False, "Delete the run in --workdir (checkpoints, best model) and "
                                "train anew; without it, a workdir holding a run of another config is refused.",
                                flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir"], flag_values=FLAGS)


def _train(positional: list[str]) -> None:
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  logging.getLogger().setLevel(logging.WARNING)  # orbax, jax and tensorboardX chatter at INFO
  logging.getLogger("jaxret").setLevel(logging.INFO)
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                         _CONFIG.value.heartbeat_timeout_seconds)
  from jaxret.training import loop  # pylint: disable=import-outside-toplevel  (after initialize: JAX backends)
  import jax  # pylint: disable=import-outside-toplevel
  try:
    results = loop.train(_CONFIG.value, _WORKDIR.value, start_over=_START_OVER.value)
  except jax.errors.JaxRuntimeError as error:
    text = "".join(traceback.format_exception(error))  # with the errors it was raised while handling
    lost = distributed.lost_process(text, jax.process_index(), jax.process_count())
    if lost is None:
      raise  # a process lost otherwise is named by the coordination service within its heartbeat timeout
    traceback.print_exc()
    sys.stdout.flush()
    print(f"error: process {jax.process_index()} of {jax.process_count()} stops: process {lost} was lost. Rerun "
          f"every process with the same --workdir to resume from the last complete checkpoint",
          file=sys.stderr, flush=True)
    os._exit(1)  # a normal exit would wait at jax.distributed's shutdown barrier for the lost process
  if jax.process_index() == 0 and results:
    print(json.dumps({"split": "test", **results}))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_train, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-train` console script."""
  distributed.cpu_xla_flags()
  sys.exit(main())
