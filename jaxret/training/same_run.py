"""A workdir holds one run. Resuming it with a config that trains another model, on other data or
another way is refused, naming the settings that differ, unless the caller asks to start over.

The settings a resumed run may change (`RESUMABLE`) are those of its length, logging, checkpoints,
data loading and evaluation: extending `total_steps` or evaluating another way continues the
same run (a longer `total_steps` also stretches a schedule that depends on it).
"""
import os
import shutil

import ml_collections

from jaxret import saved_run
from jaxret.training import checkpoint
from jaxret.user_errors import InputError

RESUMABLE = ("total_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "num_workers",
             "profile_steps", "data_dir", "init_weights", "data.device_prefetch",
             "heartbeat_timeout_seconds")
RUN_FOLDERS = ("checkpoints", "best", "checkpoints_unreadable")  # what a start over removes


def _flat(values: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in values.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def changed_settings(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> list[str]:
  """"key: saved -> now" for each setting that differs and that a resumed run may not change."""
  before, after = _flat(saved.to_dict()), _flat(config.to_dict())
  resumable = lambda key: key in RESUMABLE or (key.startswith("eval.") and key != "eval.protocol")
  return [f"{key}: {before.get(key, '(absent)')!r} -> {after.get(key, '(absent)')!r}"
          for key in sorted(set(before) | set(after))
          if not resumable(key) and before.get(key) != after.get(key)]


def check_same_run(workdir: str, config: ml_collections.ConfigDict) -> None:
  """InputError naming the settings that differ when `workdir` holds a run of another config."""
  if not checkpoint.saved_steps(workdir) or not os.path.isfile(os.path.join(workdir, saved_run.CONFIG_FILE)):
    return
  changes = changed_settings(saved_run.load_config(workdir), config)
  if changes:
    raise InputError(f"{workdir} holds a run of another config ({'; '.join(changes)}): resuming it would train "
                     f"a different model or on different data. Use another --workdir, or pass --start_over "
                     f"(jaxret.train(..., start_over=True)) to delete that run and train anew")


def start_over(workdir: str) -> None:
  """Deletes the run's checkpoints and best model (metrics are rewritten from step 0 by the run)."""
  for name in RUN_FOLDERS:
    shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
