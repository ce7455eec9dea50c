"""launch.export after a tiny synthetic training run: the serialised program is the run's evaluation
embedding at any batch size, and `ExportedEmbedding` serves it without the training code."""
import contextlib
import io
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import baseline
from jaxret import saved_run
from jaxret.data import pipeline
from jaxret.exported_embedding import ExportedEmbedding
from launch import export
from tests.methods.conftest import train_tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIM = 12
SIZE = 32  # the tiny run's image size


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("export_run")
  train_tiny(baseline.get_config(), workdir, embedding_dim=DIM)
  return str(workdir)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
  """(the program's path, the JSON line the command printed)."""
  out = str(tmp_path_factory.mktemp("export") / "model.stablehlo")
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert export.main(["--workdir", run_dir, "--out", out]) == 0
  return out, json.loads(printed.getvalue().strip().splitlines()[-1])


def _images(n: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def _embed_fn(run: saved_run.SavedRun, images: np.ndarray) -> np.ndarray:
  """What evaluation computes for already-resized uint8 images."""
  normalised = np.stack([pipeline.normalize(image) for image in images])
  fn = jax.jit(lambda p, s, x: run.method.embed_fn(p, s, x, run.config))
  return np.asarray(fn(run.params, run.method_state, normalised), np.float32)


def _assert_float32_rounding(got: np.ndarray, expected: np.ndarray) -> None:
  """Equal up to float32 rounding. The program's inputs are evaluation's bit for bit, but XLA
  folds its constant parameters (batch-norm statistics) at compile time, a few ulps away from the
  same arithmetic at run time: errors of the size of the vectors' largest entries x 1e-7."""
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_the_program_is_the_run_embedding_at_any_batch_size(run_dir, exported):
  out, printed = exported
  run = saved_run.restore(run_dir)
  with open(out, "rb") as f:
    program = jax.export.deserialize(bytearray(f.read()))
  assert str(program.in_avals[0].shape[0]) == "b" and program.in_avals[0].dtype == np.uint8
  assert "cpu" in program.platforms
  for n, seed in ((1, 0), (7, 1)):
    images = _images(n, seed)
    got = np.asarray(program.call(images))
    assert got.dtype == np.float32 and got.shape == (n, DIM)
    _assert_float32_rounding(got, _embed_fn(run, images))

  metadata = json.load(open(out + ".json"))
  assert {k: metadata[k] for k in ("input_shape", "input_dtype", "output_dim", "method", "metric", "hash_codes",
                                   "checkpoint", "checkpoint_step", "jax_version")} == {
      "input_shape": [SIZE, SIZE, 3], "input_dtype": "uint8", "output_dim": DIM, "method": "baseline",
      "metric": "cosine", "hash_codes": False, "checkpoint": "latest", "checkpoint_step": 4,
      "jax_version": jax.__version__}
  assert metadata["platforms"] == list(program.platforms)
  assert printed == {"out": out, "method": "baseline", "dim": DIM, "input_shape": [SIZE, SIZE, 3],
                     "bytes": os.path.getsize(out), "platforms": list(program.platforms), "checkpoint_step": 4}
  assert not [name for name in os.listdir(os.path.dirname(out)) if ".tmp" in name]


_SERVE = """
import sys
import numpy as np
from jaxret.exported_embedding import ExportedEmbedding
model = ExportedEmbedding.load(sys.argv[1])
np.save(sys.argv[3], model(np.load(sys.argv[2])))
loaded = sorted(m for m in sys.modules if m.startswith(("jaxret.methods", "jaxret.training", "flax")))
assert not loaded, loaded
print(model.metadata["method"], model.dim)
"""


def test_the_loader_serves_the_program_without_the_training_code(run_dir, exported, tmp_path):
  out, _ = exported
  images = _images(5, 2)
  np.save(tmp_path / "images.npy", images)
  result = subprocess.run([sys.executable, "-c", _SERVE, out, str(tmp_path / "images.npy"),
                           str(tmp_path / "vectors.npy")], cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["baseline", str(DIM)]
  vectors = np.load(tmp_path / "vectors.npy")
  assert vectors.dtype == np.float32 and vectors.shape == (5, DIM)
  _assert_float32_rounding(vectors, _embed_fn(saved_run.restore(run_dir), images))


def test_the_loader_names_the_expected_shape_and_the_missing_file(exported, tmp_path):
  out, _ = exported
  model = ExportedEmbedding.load(out)
  assert model.metadata["output_dim"] == DIM and model.input_shape == (SIZE, SIZE, 3)
  assert model(np.zeros((0, SIZE, SIZE, 3), np.uint8)).shape == (0, DIM)
  with pytest.raises(ValueError, match=r"expects uint8 \[n, 32, 32, 3\]"):
    model(np.zeros((2, SIZE + 1, SIZE, 3), np.uint8))
  with pytest.raises(ValueError, match=r"dtype float32.*expects uint8 \[n, 32, 32, 3\]"):
    model(np.zeros((2, SIZE, SIZE, 3), np.float32))
  missing = str(tmp_path / "nowhere.stablehlo")
  with pytest.raises(ValueError, match="nowhere.stablehlo' does not exist"):
    ExportedEmbedding.load(missing)
  (tmp_path / "junk.stablehlo").write_bytes(b"not a program")
  (tmp_path / "junk.stablehlo.json").write_text("{}")
  with pytest.raises(ValueError, match="junk.stablehlo' is not a readable jax.export program"):
    ExportedEmbedding.load(str(tmp_path / "junk.stablehlo"))


def test_a_missing_workdir_or_output_folder_is_a_user_error(run_dir, tmp_path, capsys):
  missing = str(tmp_path / "no_run")
  with pytest.raises(SystemExit) as stop:
    export.main(["--workdir", missing, "--out", str(tmp_path / "model.stablehlo")])
  assert stop.value.code == 2 and missing in capsys.readouterr().err
  folder = str(tmp_path / "no_folder")
  with pytest.raises(SystemExit) as stop:
    export.main(["--workdir", run_dir, "--out", os.path.join(folder, "model.stablehlo")])
  assert stop.value.code == 2 and folder in capsys.readouterr().err
