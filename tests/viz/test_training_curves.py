import json

import numpy as np
import pytest
from PIL import Image

from jaxret.viz import training_curves
from launch import plot_curves


def _write_run(workdir, lines):
  workdir.mkdir(exist_ok=True)
  with open(workdir / "metrics.jsonl", "w") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)


@pytest.fixture
def run(tmp_path):
  """A run's metrics as the train loop writes them: train every 2 steps, val every 4, test once."""
  lines = [{"step": s, "split": "train", "loss": 5.0 / s, "accuracy": 0.1 * s, "learning_rate": 0.01 * (1 - s / 9)}
           for s in range(2, 10, 2)]
  lines += [{"step": s, "split": "val", "recall@1": 0.1 * s, "map": 0.05 * s, "attribute_accuracy/wings": 0.5}
            for s in (4, 8)]
  lines.append({"step": 8, "split": "test", "recall@1": 0.7, "map": 0.3, "checkpoint_step": 8})
  _write_run(tmp_path / "run", lines)
  return tmp_path / "run"


def test_curves_png_has_a_panel_per_curve_and_is_not_blank(run, tmp_path, capsys):
  out = str(tmp_path / "curves.png")
  assert plot_curves.main(["--workdir", str(run), "--out", out]) == 0
  assert capsys.readouterr().out == f"wrote {out}: loss, learning_rate, recall@1, map\n"  # no bookkeeping panels
  with Image.open(out) as image:
    assert image.size == training_curves.figure_size(4) == (3 * 400, 2 * 300)
    pixels = np.asarray(image.convert("RGB"), np.float32)
  assert pixels.std() > 10
  # The empty sixth cell of the 3 x 2 grid stays white; the first panel has drawn curves.
  assert (pixels[300:, 800:] == 255).all() and (pixels[:300, :400] < 200).any()


def test_metrics_file_errors_name_the_file_and_line(run, tmp_path):
  with pytest.raises(SystemExit, match="nowhere/metrics.jsonl"):
    plot_curves.main(["--workdir", str(tmp_path / "nowhere" / "metrics.jsonl"), "--out", str(tmp_path / "x.png")])
  _write_run(tmp_path / "empty", [])
  with pytest.raises(ValueError, match="empty/metrics.jsonl' is empty"):
    training_curves.read_metrics(str(tmp_path / "empty"))
  with open(run / "metrics.jsonl", "a") as f:
    f.write('{"step": 9, "split": "train", "loss": 0.1\n')
  with pytest.raises(ValueError, match=r"run/metrics.jsonl, line 8: not JSON"):
    training_curves.plot_training_curves(str(run), str(tmp_path / "x.png"))


def test_speed_lines_get_their_panels_and_the_figure_comes_back(run):
  with open(run / "metrics.jsonl", "a") as f:
    for step in (2, 4, 6, 8):
      f.write(json.dumps({"step": step, "split": "speed", "images_per_second": 100.0 + step, "steps_per_second": 3.0,
                          "step_ms": 320.0, "data_wait_ms": 5.0}) + "\n")
  figure = training_curves.training_curves(str(run))
  titles = [axes.get_title() for axes in figure.axes]
  assert titles == ["loss", "learning_rate", "images_per_second", "data_wait_ms", "recall@1", "map"]
  (line,) = figure.axes[2].get_lines()
  assert list(line.get_xdata()) == [2, 4, 6, 8] and line.get_label() == "speed"
  assert [l.get_label() for l in figure.axes[4].get_lines()] == ["test", "val"]  # no speed curve among the scores
