"""Training speed between two log lines: images and steps per second, and the host's wait for
input batches."""
import contextlib
import time


class Throughput:
  """Counts the steps since the last `report`, their wall time and the part of it the host spent
  waiting for the next batch (`waiting_for_data`: reading it from the input pipeline and putting it
  on the devices). Evaluations and checkpoints (`paused`) are left out. Steps run asynchronously,
  so `report` must follow a point where the host waited for the last step's outputs (the loop's
  log step reads the step's metrics): the wall time then holds the device work of every step
  counted. A data wait close to the step time means the input pipeline bounds the training speed.
  """

  def __init__(self, batch_size: int):
    self.batch_size = batch_size
    self._restart()

  def _restart(self) -> None:
    self._steps, self._data_seconds, self._paused_seconds = 0, 0.0, 0.0
    self._start = time.perf_counter()

  @contextlib.contextmanager
  def waiting_for_data(self):
    start = time.perf_counter()
    try:
      yield
    finally:
      self._data_seconds += time.perf_counter() - start

  @contextlib.contextmanager
  def paused(self):
    start = time.perf_counter()
    try:
      yield
    finally:
      self._paused_seconds += time.perf_counter() - start

  def step(self) -> None:
    self._steps += 1

  def report(self) -> dict[str, float]:
    """{"images_per_second", "steps_per_second", "step_ms", "data_wait_ms"} (the last two per step)
    over the steps since the previous report; then starts counting afresh."""
    seconds = max(time.perf_counter() - self._start - self._paused_seconds, 1e-9)
    steps = max(self._steps, 1)
    speed = {"images_per_second": self._steps * self.batch_size / seconds, "steps_per_second": self._steps / seconds,
             "step_ms": 1000 * seconds / steps, "data_wait_ms": 1000 * self._data_seconds / steps}
    self._restart()
    return speed
