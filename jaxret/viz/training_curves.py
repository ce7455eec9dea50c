"""Training curves of a run as a PNG: loss, learning rate and each evaluation metric per split.

Reads `<workdir>/metrics.jsonl` (`jaxret.training.metrics_writer`: one JSON object per line with
`step`, `split` and the metrics). Panels: the training `loss`, the `learning_rate`, the training
speed (`images_per_second`, `data_wait_ms`), then one per evaluation metric (validation and test
lines of `recall@1`, `map`, ...), each split its own curve (a test score, written once, is a
point). Panels are `PANEL_PX` pixels, `COLUMNS` to a row.
"""
import json
import math
import os
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PANEL_PX = (400, 300)
COLUMNS = 3
DPI = 100
TRAIN_PANELS = ("loss", "learning_rate")
SPEED_PANELS = ("images_per_second", "data_wait_ms")  # of the "speed" lines
NOT_CURVES = ("checkpoint_step", "skipped_queries")  # bookkeeping, not scores


def read_metrics(path: str) -> list[dict]:
  """The lines of a metrics.jsonl (or of `<path>/metrics.jsonl` when `path` is a workdir).

  Raises:
    ValueError: naming the file (and line) when it is missing, empty or not JSON lines with step and split.
  """
  if os.path.isdir(path):
    path = os.path.join(path, "metrics.jsonl")
  if not os.path.isfile(path):
    raise ValueError(f"metrics file {path!r} does not exist: expected a run's metrics.jsonl or its workdir")
  rows = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}, line {number}: not JSON ({e})") from None
      if not isinstance(row, dict) or "step" not in row or "split" not in row:
        raise ValueError(f"{path}, line {number}: expected an object with 'step' and 'split', got {line.strip()[:80]}")
      rows.append(row)
  if not rows:
    raise ValueError(f"metrics file {path!r} is empty: the run has logged nothing yet")
  return rows


def panels(rows: Sequence[dict]) -> list[str]:
  """The panel names for `rows`: `TRAIN_PANELS` present in training lines, `SPEED_PANELS` present
  in speed lines, then the evaluation metrics in first-seen order (per-attribute accuracies
  `attribute_accuracy/<name>` left out)."""
  present = {split: {k for row in rows if row["split"] == split for k in row} for split in ("train", "speed")}
  names = [name for name in TRAIN_PANELS if name in present["train"]]
  names += [name for name in SPEED_PANELS if name in present["speed"]]
  for row in rows:
    if row["split"] not in ("train", "speed"):
      names += [k for k in row if k not in ("step", "split", *NOT_CURVES, *names) and "/" not in k]
  return names


def figure_size(num_panels: int) -> tuple[int, int]:
  """(width, height) in pixels of a figure of `num_panels` panels."""
  rows = max(1, math.ceil(num_panels / COLUMNS))
  return min(num_panels, COLUMNS) * PANEL_PX[0], rows * PANEL_PX[1]


def training_curves(path: str) -> Figure:
  """The run's curves (`path`: metrics.jsonl or workdir) as a matplotlib figure (on its own Agg
  canvas: no pyplot state, a notebook's backend untouched; a notebook shows it inline)."""
  rows = read_metrics(path)
  names = panels(rows)
  if not names:
    raise ValueError(f"metrics of {path!r} hold no loss, learning rate or evaluation metric to plot")
  width, height = figure_size(len(names))
  figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
  FigureCanvasAgg(figure)
  evaluated = sorted({r["split"] for r in rows if r["split"] not in ("train", "speed")})
  for i, name in enumerate(names):
    axes = figure.add_subplot(math.ceil(len(names) / COLUMNS), min(len(names), COLUMNS), i + 1)
    splits = ("train",) if name in TRAIN_PANELS else ("speed",) if name in SPEED_PANELS else evaluated
    for split in splits:
      points = [(r["step"], r[name]) for r in rows if r["split"] == split and r.get(name) is not None]
      if points:
        steps, values = zip(*points)
        axes.plot(steps, values, marker="o" if split not in ("train", "speed") else None, markersize=4, label=split)
    axes.set_title(name, fontsize=10)
    axes.set_xlabel("step", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    if len(splits) > 1:
      axes.legend(fontsize=7)
  figure.tight_layout()
  return figure


def plot_training_curves(path: str, out_png: str) -> list[str]:
  """Draws the run's curves (`path`: metrics.jsonl or workdir) into the PNG `out_png`; returns the panel names."""
  training_curves(path).savefig(out_png, dpi=DPI, format="png")
  return panels(read_metrics(path))
