"""Metrics to `<workdir>/metrics.jsonl` (one JSON object per line) and TensorBoard, process 0 only."""
import json
import os

import jax


class MetricsWriter:
  """Each line: `{"step": N, "split": "train" | "speed" | "val" | "test", <metric>: float, ...}`.

  `first_step` is the first step this run writes (0 for a fresh start, s + 1 when resuming from
  the checkpoint of step s): lines of steps from `first_step` on, written by an earlier run that
  was killed past its last checkpoint, are dropped from metrics.jsonl, and TensorBoard is told to
  purge its events from that step on (tensorboardX's `purge_step`), so neither shows a step twice.
  """

  def __init__(self, workdir: str, first_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tensorboard = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    self._drop_from(first_step)
    from tensorboardX import SummaryWriter
    self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=first_step)

  def _drop_from(self, step: int) -> None:
    """Drops the lines of steps >= `step`; this run writes them again."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f if line.strip() and json.loads(line)["step"] < step]
    with open(self.path + ".tmp", "w") as f:
      f.writelines(kept)
    os.replace(self.path + ".tmp", self.path)

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.enabled:
      return
    values = {k: float(v) for k, v in metrics.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), "split": split, **values}) + "\n")
    for name, value in values.items():
      self._tensorboard.add_scalar(f"{split}/{name}", value, step)

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()
