"""Trains a method from an ml_collections config and evaluates it.

  python -m launch.train --config configs/baseline.py:dataset=synthetic --workdir /tmp/run \
      --config.total_steps=50

Rerunning with the same --workdir resumes from its latest checkpoint. Multi-host: start one
process per host with --coordinator_address/--num_processes/--process_id, or under SLURM /
Open MPI where they are detected (see launch/slurm.sbatch and launch/local_multiprocess.sh).
"""
import json
import logging

from absl import flags
from ml_collections import config_flags

from jaxret import user_errors
from jaxret.training import distributed

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/baseline.py:dataset=synthetic.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics; resumed if it has any.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  logging.getLogger().setLevel(logging.WARNING)  # orbax, jax and tensorboardX chatter at INFO
  logging.getLogger("jaxret").setLevel(logging.INFO)
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  from jaxret.training import loop  # after initialize: nothing may touch JAX backends before it
  import jax
  results = loop.train(_CONFIG.value, _WORKDIR.value)
  if jax.process_index() == 0 and results:
    print(json.dumps({"split": "test", **results}))


if __name__ == "__main__":
  distributed.cpu_xla_flags()
  user_errors.run(main)
