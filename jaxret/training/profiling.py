"""`config.profile_steps`: a `jax.profiler` trace of chosen training steps, each step annotated."""
import contextlib
import logging
import os

import jax

log = logging.getLogger(__name__)


class ProfileWindow:
  """Traces steps `first..last` (`steps` = (first, last); () traces nothing) into
  `<workdir>/profile/process_<i>` (`plugins/profile/<run>/*.xplane.pb`, which `tensorboard --logdir
  <workdir>/profile` with the profile plugin, or xprof, opens). Every step runs under a
  `StepTraceAnnotation` named "train" with its step number, so the trace viewer groups by step."""

  def __init__(self, workdir: str, steps: tuple[int, ...]):
    self.first, self.last = tuple(steps) or (0, -1)
    self.directory = os.path.join(workdir, "profile", f"process_{jax.process_index()}")
    self._tracing = False

  @contextlib.contextmanager
  def step(self, step: int, outputs=lambda: None):
    """Runs one training step; `outputs()` gives what to wait for before the trace stops."""
    if not self._tracing and self.first <= step <= self.last:  # a run resumed inside the window traces the rest
      jax.profiler.start_trace(self.directory)
      self._tracing = True
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      yield
    if self._tracing and step >= self.last:
      jax.block_until_ready(outputs())
      self.stop()
      log.info("profile of steps %d-%d written to %s", self.first, self.last, self.directory)

  def stop(self) -> None:
    if self._tracing:
      jax.profiler.stop_trace()
      self._tracing = False
