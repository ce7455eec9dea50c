"""A tiny baseline config for training-loop tests, and helpers to run and read a job."""
import json
import os
import subprocess
import sys

import orbax.checkpoint as ocp
import pytest

from configs import baseline

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = {
    "backbone_width": 0.0625,
    "embedding_dim": 16,
    "image_size": 32,
    "batch_size": 8,
    "total_steps": 6,
    "log_every": 1,
    "eval_every": 0,
    "checkpoint_every": 2,
    "data.synthetic_images_per_class": 4,
    "data.val_classes": 2,
    "eval.batch_size": 64,
    "optimizer.warmup_steps": 0,
    # This 4-channel net is chaotic at larger rates: float32 rounding differences between device
    # layouts (1e-7) grow to percents within 3 steps at 0.01; at 0.001 they stay below 1e-6.
    "optimizer.learning_rate": 0.001,
}


def tiny_config(**overrides):
  config = baseline.get_config()
  for key, value in {**TINY, **overrides}.items():
    target = config
    *parents, leaf = key.split(".")
    for parent in parents:
      target = target[parent]
    target[leaf] = value
  return config


def launch_args(workdir, **overrides) -> list[str]:
  """`python -m launch.train` arguments for the tiny config."""
  args = [sys.executable, "-m", "launch.train", "--config", "configs/baseline.py", "--workdir", str(workdir)]
  return args + [f"--config.{k}={v}" for k, v in {**TINY, **overrides}.items()]


def launch(workdir, *flags, env=None, **overrides) -> subprocess.Popen:
  """Starts `python -m launch.train` on the tiny config; stdout and stderr go to `.stdout`."""
  return subprocess.Popen(launch_args(workdir, **overrides) + list(flags), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_metrics(workdir, split="train") -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [line for line in map(json.loads, f) if line["split"] == split]


def final_state(workdir, step):
  return ocp.PyTreeCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step), "state"))


@pytest.fixture(scope="session")
def compilation_cache(tmp_path_factory):
  """Shares compiled programs between the runs of a test session (in-process and launched)."""
  import jax
  path = str(tmp_path_factory.mktemp("jax_cache"))
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = path
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  return path
