"""notebooks/quickstart.ipynb runs top to bottom (nbclient, a fresh kernel) in a temporary folder, shows
its figures, writes its run there and nothing into the repository, and is kept in git without outputs.
The kernel imports this checkout's code (PYTHONPATH) and sees one CPU device, as a user's would."""
import glob
import json
import os

import nbclient
import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def _repo_files() -> set[str]:
  return {os.path.relpath(os.path.join(d, f), REPO) for d, dirs, files in os.walk(REPO)
          for f in files if ".git" not in d.split(os.sep) and "__pycache__" not in d}


def test_notebook_is_kept_without_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_quickstart_runs_end_to_end(tmp_path, monkeypatch):
  monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's tempfile.mkdtemp() run folder
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
  monkeypatch.setenv("XLA_FLAGS", " ".join(flags))
  before = _repo_files()
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on a failing cell

  runs = glob.glob(str(tmp_path / "jaxret_quickstart_*"))
  assert len(runs) == 1
  with open(os.path.join(runs[0], "metrics.jsonl")) as f:
    test_lines = [line for line in map(json.loads, f) if line["split"] == "test"]
  assert len(test_lines) == 1 and 0.0 <= test_lines[0]["recall@1"] <= 1.0
  for figure in ("a3m_attention.png", "retrieval.png"):
    assert os.path.getsize(os.path.join(runs[0], figure)) > 10_000
  shown = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
  assert len(shown) == 3  # the classes, the attention maps, the retrieval grid
  assert _repo_files() == before
