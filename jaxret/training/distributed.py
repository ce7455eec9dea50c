"""Multi-host start-up: `jax.distributed.initialize` from flags, or from the cluster's environment."""
import importlib.metadata
import logging
import os
import re

import jax

from jaxret.user_errors import InputError

log = logging.getLogger(__name__)

# Environment variables by which jax.distributed.initialize() detects a cluster by itself.
_CLUSTER_ENV = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")
# jaxlib versions on which `--xla_cpu_experimental_ynn_fusion_type` was measured (BENCHMARKS.md).
_YNN_FLAG_JAXLIBS = ("0.10.2",)
# How the coordination service names a process it declared lost, in the errors it raises.
_LOST_PROCESS = re.compile(r"Task (\d+) heartbeat timeout|stopped sending heartbeats\):\s*(\d+)")
_BROKEN_CONNECTION = ("Connection reset by peer", "Connection closed by peer", "Broken pipe")


def cpu_xla_flags(environ=os.environ) -> None:
  """XLA:CPU flags measured to train faster (BENCHMARKS.md, "XLA flags tried"), each added
  unless the user set it. Call before JAX initialises its backends.

  - `--xla_cpu_use_xnnpack=true`: XNNPACK for convolutions.
  - `--xla_cpu_experimental_ynn_fusion_type=dot,reduce` (only with the jaxlib it was measured on,
    `_YNN_FLAG_JAXLIBS`: XLA aborts on a flag its version does not know): YNNPACK only for matrix
    products and reductions. With jaxlib 0.10.2's default, YNNPACK also takes the convolutions
    and runs them at about half XNNPACK's speed: ResNet-50 224 px batch 8 trains 1.4x faster
    with the flag, ResNet-18 64 px 1.2x.
  """
  flags = environ.get("XLA_FLAGS", "")
  wanted = [("--xla_cpu_use_xnnpack", "true")]
  if importlib.metadata.version("jaxlib") in _YNN_FLAG_JAXLIBS:
    wanted.append(("--xla_cpu_experimental_ynn_fusion_type", "dot,reduce"))
  for name, value in wanted:
    if name not in flags:
      flags = f"{flags} {name}={value}".strip()
  environ["XLA_FLAGS"] = flags


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, heartbeat_timeout_seconds: int = 100) -> None:
  """Joins a multi-process job when flags are given or a cluster (SLURM, Open MPI, TPU) is
  detected; a plain single-process run does nothing. CPU processes use gloo collectives.

  A process that sends the coordination service no heartbeat for `heartbeat_timeout_seconds`
  is declared lost, and the service then ends every other process, naming it ("The following
  tasks are unhealthy (stopped sending heartbeats): 1"); a lost process 0 (the service itself)
  ends the others at once ("the leader task was preempted/died").
  """
  explicit = coordinator_address is not None
  slurm_single_task = os.environ.get("SLURM_NTASKS", "2") == "1"
  if not explicit and (slurm_single_task or not any(k in os.environ for k in _CLUSTER_ENV)):
    return
  if explicit and (num_processes is None or process_id is None):
    raise ValueError("--coordinator_address needs --num_processes and --process_id as well")
  if not (isinstance(heartbeat_timeout_seconds, int) and heartbeat_timeout_seconds > 0):
    raise InputError(f"config.heartbeat_timeout_seconds={heartbeat_timeout_seconds!r}: expected a positive "
                     f"whole number of seconds")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address, num_processes, process_id,
                             heartbeat_timeout_seconds=heartbeat_timeout_seconds)
  log.info("process %d of %d, %d local / %d global devices; a process silent for %d s is declared lost",
           jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
           heartbeat_timeout_seconds)


def lost_process(error_text: str, process_index: int, process_count: int) -> int | None:
  """The process a runtime error of a multi-process job shows to be lost: the one the coordination
  service names ("Task 1 heartbeat timeout"), or the other of two processes when a collective's
  connection to it broke (gloo's "Connection reset by peer"); else None."""
  named = _LOST_PROCESS.search(error_text)
  if named:
    return int(named.group(1) or named.group(2))
  if process_count == 2 and any(reason in error_text for reason in _BROKEN_CONNECTION):
    return 1 - process_index
  return None
