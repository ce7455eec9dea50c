"""orbax checkpoints of the train state and the grain iterator, written atomically.

A checkpoint at step N holds the state after N updates and the iterator positioned at the
batch of update N + 1, so a resumed run continues exactly.
"""
import logging
import os
import shutil

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxret.training.state import TrainState
from jaxret.user_errors import InputError

log = logging.getLogger(__name__)


def make_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  """Async manager under `<workdir>/checkpoints`, keeping the newest `keep` steps."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def saved_steps(workdir: str) -> list[int]:
  """Steps of the complete checkpoints in `<workdir>/checkpoints`, oldest first (orbax writes a
  checkpoint under a temporary name and renames it to its step once complete)."""
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(name) for name in os.listdir(folder) if name.isdigit()) if os.path.isdir(folder) else []


def save(manager: ocp.CheckpointManager, state: TrainState, data_iterator: grain.DatasetIterator) -> None:
  """Starts an asynchronous save at `state.step` (device arrays are copied before returning)."""
  step = int(jax.device_get(state.step))
  manager.save(step, force=True, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore_latest(manager: ocp.CheckpointManager, state: TrainState,
                   data_iterator: grain.DatasetIterator) -> TrainState | None:
  """Restores the newest readable checkpoint into `state`'s shapes and shardings and moves
  `data_iterator` to its position; None when there is none.

  A checkpoint that cannot be read (a file truncated or deleted) is logged with the reason and the
  one before it is tried; once one is read, the unreadable newer ones are moved to
  `<workdir>/checkpoints_unreadable/<step>` (kept, out of the way of the steps the run saves
  again). When none is readable the start stops (InputError naming each and why) and moves
  nothing: a rerun (a requeued job) stops again rather than training from scratch over them."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  unreadable = {}
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(data_iterator)))
    except Exception as error:  # pylint: disable=broad-except  (any unreadable file: reported, then the previous)
      unreadable[step] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
      log.warning("checkpoint %s is unreadable (%s); trying the one before it", _path(manager, step), unreadable[step])
      continue
    if unreadable:
      _set_aside(manager, sorted(unreadable))
    return restored["state"]
  if unreadable:
    listed = "; ".join(f"{_path(manager, step)} ({reason})" for step, reason in unreadable.items())
    raise InputError(f"no readable checkpoint: {listed}. Move them away (or pass --start_over) to train from "
                     "scratch, or use another --workdir")
  return None


def _path(manager: ocp.CheckpointManager, step: int) -> str:
  return os.path.join(str(manager.directory), str(step))


def _set_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
  """Moves checkpoints `steps` to `<workdir>/checkpoints_unreadable/` (process 0; all wait)."""
  if jax.process_index() == 0:
    folder = os.path.join(os.path.dirname(str(manager.directory).rstrip("/")), "checkpoints_unreadable")
    for step in steps:
      target = os.path.join(folder, str(step))
      shutil.rmtree(target, ignore_errors=True)
      shutil.move(_path(manager, step), target)
  multihost_utils.sync_global_devices("jaxret_checkpoints_set_aside")
  manager.reload()


def make_best_manager(workdir: str, metric: str) -> ocp.CheckpointManager:
  """Manager under `<workdir>/best` keeping the one model with the highest validation `metric`."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=1, best_fn=lambda metrics: metrics[metric], best_mode="max",
      enable_async_checkpointing=True, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "best"), options=options)


def save_if_best(manager: ocp.CheckpointManager, state: TrainState, val_metrics: dict[str, float]) -> None:
  """Offers the model at `state.step` with its validation metrics; the manager keeps the best.

  A step saved before a restart is not saved again (the resumed run recomputes the same model).
  """
  step = int(jax.device_get(state.step))
  if step not in manager.all_steps():
    model = {"params": state.params, "method_state": state.method_state}
    manager.save(step, args=ocp.args.StandardSave(model), metrics=dict(val_metrics), force=True)


def restore_best(manager: ocp.CheckpointManager, state: TrainState) -> tuple[int, dict] | None:
  """(step, {"params", "method_state"}) of the best model, in `state`'s shapes and shardings;
  None when no model was offered."""
  manager.wait_until_finished()
  step = manager.best_step()
  if step is None:
    return None
  model = {"params": state.params, "method_state": state.method_state}
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, model)
  return step, manager.restore(step, args=ocp.args.StandardRestore(abstract))
