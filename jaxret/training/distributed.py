"""Multi-host start-up: `jax.distributed.initialize` from flags, or from the cluster's environment."""
import importlib.metadata
import logging
import os

import jax

log = logging.getLogger(__name__)

# Environment variables by which jax.distributed.initialize() detects a cluster by itself.
_CLUSTER_ENV = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")
# jaxlib versions on which `--xla_cpu_experimental_ynn_fusion_type` was measured (BENCHMARKS.md).
_YNN_FLAG_JAXLIBS = ("0.10.2",)


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
               process_id: int | None = None) -> None:
  """Joins a multi-process job when flags are given or a cluster (SLURM, Open MPI, TPU) is
  detected; a plain single-process run does nothing. CPU processes use gloo collectives."""
  explicit = coordinator_address is not None
  slurm_single_task = os.environ.get("SLURM_NTASKS", "2") == "1"
  if not explicit and (slurm_single_task or not any(k in os.environ for k in _CLUSTER_ENV)):
    return
  if explicit and (num_processes is None or process_id is None):
    raise ValueError("--coordinator_address needs --num_processes and --process_id as well")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
  log.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
           jax.local_device_count(), jax.device_count())
