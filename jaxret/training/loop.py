"""The training loop: data, state, compiled steps, checkpoints, metrics, evaluation.

Importable from a notebook: `train(config, workdir)` runs a whole job and returns the final
test metrics; the pieces it uses are each testable alone.
"""
import contextlib
import errno
import logging
import shutil
import signal

import jax
import ml_collections
from jax.experimental import multihost_utils

from jaxret import methods, protocols
from jaxret.data import datasets, decoded, device_augment, pipeline
from jaxret.eval import evaluator as evaluator_lib
from jaxret.progress import Progress
from jaxret import mesh as mesh_lib
from jaxret.training import checkpoint, config as config_lib, optimizer, step as step_lib
from jaxret import saved_run
from jaxret.training import profiling, same_run, state as state_lib
from jaxret.training.device_prefetch import DevicePrefetch
from jaxret.training.metrics_writer import MetricsWriter
from jaxret.training.throughput import Throughput
from jaxret.user_errors import InputError

log = logging.getLogger(__name__)


class _Preemption:
  """Turns SIGTERM into a request to checkpoint and stop after the current step."""

  def __init__(self):
    self.requested = False
    self._previous = None
    if jax.process_count() == 1:  # multi-process jobs use orbax's synchronised preemption check
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    log.warning("SIGTERM received: saving a checkpoint after this step, then stopping")
    self.requested = True

  def check(self, manager, step: int) -> bool:
    return self.requested or (jax.process_count() > 1 and manager.reached_preemption(step))

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _check_finite(state: state_lib.TrainState, manager) -> None:
  bad = int(jax.device_get(state.nonfinite_step))
  if bad >= 0:
    manager.wait_until_finished()
    raise FloatingPointError(
        f"loss or gradients became NaN/Inf at step {bad + 1}; training stopped. The last good "
        f"checkpoint (step {manager.latest_step()}) is kept in {manager.directory}")


def score_test(evaluator, state: state_lib.TrainState, best) -> dict[str, float]:
  """Test metrics of the model chosen on validation (the last model when there is no validation),
  with `checkpoint_step`, the step of the model scored."""
  chosen = checkpoint.restore_best(best, state) if best is not None else None
  if chosen is None:
    chosen = int(jax.device_get(state.step)), {"params": state.params, "method_state": state.method_state}
  step, model = chosen
  return {**evaluator.run(model["params"], model["method_state"]), "checkpoint_step": step}


def with_dataset_info(config: ml_collections.ConfigDict, data: datasets.DatasetSplits) -> ml_collections.ConfigDict:
  """A copy of `config` with the label spaces of the dataset (classes, attribute sizes) and the
  training-set size filled in."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.num_classes = config.num_classes or data.num_train_classes
  config.num_train_examples = len(data.train)
  config.attribute_sizes = tuple(config.attribute_sizes) or tuple(data.attribute_sizes)
  config.lock()
  return config


def train(config: ml_collections.ConfigDict, workdir: str, *, devices=None,
          start_over: bool = False) -> dict[str, float]:
  """Trains `config.method` on `config.dataset`, resuming from `workdir` if it holds a checkpoint
  of the same run (another config is refused: `same_run`); `start_over` deletes that run first.

  Returns the final test-split metrics (also written to `<workdir>/metrics.jsonl`). A disk that
  fills up stops the run with an InputError naming the last complete checkpoint, which the failed
  write left intact (orbax writes under a temporary name).
  """
  try:
    return _train(config, workdir, devices, start_over)
  except Exception as error:  # pylint: disable=broad-except  (only a full disk is turned into a message)
    if not _disk_full(error):
      raise
    steps = checkpoint.saved_steps(workdir)
    last = f"the last complete checkpoint, step {steps[-1]}, is intact" if steps else "no checkpoint was complete"
    raise InputError(f"no space left on the device of {workdir} ({shutil.disk_usage(workdir).free / 2**20:.1f} "
                     f"MiB free) while writing the run: {last}. Free space (or lower config.keep_checkpoints) "
                     f"and rerun to resume") from error


def _disk_full(error: BaseException | None) -> bool:
  """Whether `error`, or one it was raised while handling, is a write that found no space."""
  while error is not None:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):  # tensorstore's errors
      return True
    error = error.__cause__ or error.__context__
  return False


def _train(config: ml_collections.ConfigDict, workdir: str, devices, start_over: bool) -> dict[str, float]:
  mesh = mesh_lib.make_mesh(devices)
  config_lib.validate(config, num_devices=mesh.size)
  method = methods.get_method(config.method)
  data = datasets.load(config)
  config = with_dataset_info(config, data)
  if start_over:
    if jax.process_index() == 0:
      same_run.start_over(workdir)
    multihost_utils.sync_global_devices("jaxret_start_over")
  same_run.check_same_run(workdir, config)
  if jax.process_index() == 0:
    saved_run.save_config(workdir, config)  # what tools (launch/embed.py) rebuild the model from

  on_device = config.data.pipeline == "device"
  train_data = pipeline.train_dataset(
      decoded.DecodedImages(data.train, config) if on_device else data.train, train_classes=data.train_classes,
      global_batch=config.batch_size, seed=config.seed, transform=pipeline.train_transform(config),
      classes_per_batch=config.data.classes_per_batch, subset_size=config.data.subset_size,
      subset_epochs=config.data.subset_epochs, process_index=jax.process_index(),
      process_count=jax.process_count(), num_workers=config.num_workers, on_device=on_device)
  put = lambda batch: mesh_lib.global_batch(batch, mesh)
  if on_device:
    augment = device_augment.make_device_augment(config, mesh_lib.data_sharding(mesh))
    put = lambda batch: augment(mesh_lib.global_batch(batch, mesh))
  data_iterator = DevicePrefetch(iter(train_data), put, config.data.device_prefetch)
  tx, schedule = optimizer.make_optimizer(config)
  state = state_lib.create(method, config, tx, pipeline.sample_batch(config), mesh)

  manager = checkpoint.make_manager(workdir, config.keep_checkpoints)
  restored = checkpoint.restore_latest(manager, state, data_iterator)
  pretrained_start = restored is None and config.init_weights != "none"
  if restored is not None:
    state = restored
  elif pretrained_start:
    state = state_lib.with_pretrained_backbone(state, config, method)
  start_step = int(jax.device_get(state.step))
  if restored is not None:
    log.info("restored from step %d in %s", start_step, workdir)
  writer = MetricsWriter(workdir, first_step=start_step + 1 if restored is not None else 0)
  train_step = step_lib.compile_train_step(method, config, tx, schedule, mesh)
  embedder = evaluator_lib.Embedder(method, config, mesh)
  test_evaluator = evaluator_lib.make_evaluator(data.test, data.test_gallery, embedder, data.train_classes)
  val_evaluator, best = None, None
  if data.val is not None:
    val_evaluator = evaluator_lib.make_evaluator(data.val, data.val_gallery, embedder, data.train_classes)
    best = checkpoint.make_best_manager(workdir, protocols.selection_metric(config))
  preemption = _Preemption()
  progress = Progress(config.total_steps, "train", "steps", initial=start_step, enabled=jax.process_index() == 0)
  throughput = Throughput(config.batch_size)
  profile = profiling.ProfileWindow(workdir, config.profile_steps)
  results = None
  try:
    if val_evaluator is not None and pretrained_start:
      # The pretrained starting point is a candidate: selection keeps it when training does not help.
      val_metrics = val_evaluator.run(state.params, state.method_state)
      writer.write(0, "val", val_metrics)
      checkpoint.save_if_best(best, state, val_metrics)
    for step in range(start_step + 1, config.total_steps + 1):
      with throughput.waiting_for_data():
        batch = next(data_iterator)
      with profile.step(step, outputs=lambda: state):
        state, metrics = train_step(state, batch)
        if config.state_update_every and step % config.state_update_every == 0:
          state = state.replace(method_state=method.update_state(state.params, state.method_state, data, config))
      throughput.step()
      last = step == config.total_steps
      if step % config.log_every == 0 or last:
        _check_finite(state, manager)
        writer.write(step, "train", jax.device_get(metrics))
        speed = throughput.report()  # after reading the step's outputs: every step counted has run
        writer.write(step, "speed", speed)
        progress.update(0, loss=f"{float(metrics['loss']):.4f}", img_s=f"{speed['images_per_second']:.1f}")
      progress.update(1)
      evaluate = val_evaluator is not None and (last or (config.eval_every and step % config.eval_every == 0))
      stop = preemption.check(manager, step)
      save = step % config.checkpoint_every == 0 or last or stop
      if evaluate or save:
        jax.block_until_ready(state)  # the step's own time stays out of the pause
      with throughput.paused():
        if evaluate:
          val_metrics = val_evaluator.run(state.params, state.method_state)
          writer.write(step, "val", val_metrics)
          checkpoint.save_if_best(best, state, val_metrics)
        if last:  # before the last save, so a resumed finished run does not log it again
          results = score_test(test_evaluator, state, best)
          writer.write(step, "test", results)
        if save:
          _check_finite(state, manager)
          checkpoint.save(manager, state, data_iterator)
      if stop and step < config.total_steps:
        log.warning("stopped at step %d after SIGTERM; rerun with the same --workdir to resume", step)
        return {}
    if results is None:  # the run had finished before: score without logging again
      results = score_test(test_evaluator, state, best)
    return results
  finally:
    profile.stop()
    progress.close()
    preemption.restore()
    _close(manager, best, writer)


def _close(manager, best, writer: MetricsWriter) -> None:
  """Waits for the checkpoint writes and closes the managers and the metrics writer, each even
  when one before it fails (a write that found the disk full)."""
  with contextlib.ExitStack() as stack:  # runs its callbacks last-in first-out
    stack.callback(writer.close)
    for m in (best, manager):
      if m is not None:
        stack.callback(m.close)
        stack.callback(m.wait_until_finished)
