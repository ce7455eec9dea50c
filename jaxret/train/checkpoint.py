"""orbax checkpoints of the train state and the grain iterator, written atomically.

A checkpoint at step N holds the state after N updates and the iterator positioned at the
batch of update N + 1, so a resumed run continues exactly.
"""
import os

import grain
import jax
import orbax.checkpoint as ocp

from jaxret.train.state import TrainState


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
