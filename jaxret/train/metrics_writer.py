"""Metrics to `<workdir>/metrics.jsonl` (one JSON object per line) and TensorBoard, process 0 only."""
import json
import os

import jax


class MetricsWriter:
  """Each line: `{"step": N, "split": "train" | "val" | "test", <metric>: float, ...}`."""

  def __init__(self, workdir: str, resumed_step: int | None = None):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tensorboard = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    if resumed_step is not None:
      self._truncate_after(resumed_step)
    from tensorboardX import SummaryWriter
    self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def _truncate_after(self, step: int) -> None:
    """Drops lines a killed run wrote past its last checkpoint; they will be written again."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
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
