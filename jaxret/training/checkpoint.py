"""orbax checkpoints of the train state and the grain iterator, written atomically.

A checkpoint at step N holds the state after N updates and the iterator positioned at the
batch of update N + 1, so a resumed run continues exactly.
"""
import os

import grain
import jax
import orbax.checkpoint as ocp

from jaxret.training.state import TrainState


def make_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  """Async manager under `<workdir>/checkpoints`, keeping the newest `keep` steps."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def save(manager: ocp.CheckpointManager, state: TrainState, data_iterator: grain.DatasetIterator) -> None:
  """Starts an asynchronous save at `state.step` (device arrays are copied before returning)."""
  step = int(jax.device_get(state.step))
  manager.save(step, force=True, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore_latest(manager: ocp.CheckpointManager, state: TrainState,
                   data_iterator: grain.DatasetIterator) -> TrainState | None:
  """Restores the newest checkpoint into `state`'s shapes and shardings and moves
  `data_iterator` to its position; None when there is none."""
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(data_iterator)))
  return restored["state"]


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
