"""launch/evaluate_arrays.py: one JSON line per run, equal to the library's metrics; clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import query_expansion, rerank
from jaxret.eval.verification import FPRS
from launch import evaluate_arrays

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_main(capsys, *argv):
  """main() in-process; returns the parsed JSON line after checking it is the only output."""
  assert evaluate_arrays.main(list(argv)) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1, lines
  return json.loads(lines[0])


def save(path, **arrays):
  np.savez(path, **arrays)
  return str(path)


def test_retrieval_with_and_without_gallery(tmp_path, capsys):
  rng = np.random.default_rng(0)
  x, labels = rng.normal(size=(50, 8)).astype(np.float32), rng.integers(0, 6, 50)
  query = save(tmp_path / "q.npz", embedding=x, label=labels)
  got = run_main(capsys, "--protocol", "retrieval", "--query", query, "--ks", "1,2,4")
  want = jaxret.eval.retrieval_metrics(x, labels, ks=(1, 2, 4))
  assert got == pytest.approx(want, abs=1e-12)
  gallery = save(tmp_path / "g.npz", embedding=x[::-1], label=labels[::-1])
  got = run_main(capsys, "--protocol", "retrieval", "--query", query, "--gallery", gallery, "--nonmi")
  assert got == pytest.approx(jaxret.eval.retrieval_metrics(x, labels, x[::-1], labels[::-1], with_nmi=False))


def test_reid(tmp_path, capsys):
  rng = np.random.default_rng(1)
  q = dict(embedding=rng.normal(size=(20, 4)), label=rng.integers(1, 6, 20), camera=rng.integers(0, 2, 20))
  g = dict(embedding=rng.normal(size=(60, 4)), label=rng.integers(-1, 6, 60), camera=rng.integers(0, 2, 60))
  got = run_main(capsys, "--protocol", "reid", "--query", save(tmp_path / "q.npz", **q),
                 "--gallery", save(tmp_path / "g.npz", **g), "--fprs=1e-4,1e-3,1e-2")
  want = jaxret.eval.reid_metrics(q["embedding"], q["label"], q["camera"], g["embedding"], g["label"], g["camera"],
                                  fprs=FPRS)
  assert got == pytest.approx(want)
  assert set(got) == {"rank1", "rank5", "rank10", "rank20", "map", "minp", "skipped_queries",
                      "tpr@fpr=1e-04", "tpr@fpr=1e-03", "tpr@fpr=1e-02"}


def test_hashing_as_a_subprocess(tmp_path):
  rng = np.random.default_rng(2)
  q = dict(code=rng.choice([-1, 1], (15, 8)), label=rng.integers(0, 3, 15))
  g = dict(code=rng.choice([-1, 1], (40, 8)), label=rng.integers(0, 3, 40))
  out = subprocess.run(
      [sys.executable, "-m", "launch.evaluate_arrays", "--protocol", "hashing", "--query",
       save(tmp_path / "q.npz", **q), "--gallery", save(tmp_path / "db.npz", **g), "--topk", "10"],
      cwd=REPO, capture_output=True, text=True, check=True)
  lines = out.stdout.splitlines()
  assert len(lines) == 1, out.stdout
  want = jaxret.eval.hashing_metrics(q["code"], q["label"], g["code"], g["label"], topk=10)
  assert json.loads(lines[0]) == pytest.approx(want)


def test_all_queries_skipped_prints_null(tmp_path, capsys):
  q = save(tmp_path / "q.npz", embedding=np.zeros((2, 2)), label=[1, 2], camera=[0, 0])
  g = save(tmp_path / "g.npz", embedding=np.ones((2, 2)), label=[3, 3], camera=[0, 0])
  got = run_main(capsys, "--protocol", "reid", "--query", q, "--gallery", g)
  assert got["map"] is None and got["skipped_queries"] == 2


def test_missing_file_names_the_file(tmp_path):
  with pytest.raises(SystemExit, match=r"--query file '.*nowhere.npz' does not exist"):
    evaluate_arrays.main(["--protocol", "retrieval", "--query", str(tmp_path / "nowhere.npz")])


def test_missing_array_names_file_and_array(tmp_path):
  q = save(tmp_path / "q.npz", embedding=np.zeros((3, 2)), label=[1, 2, 3])
  g = save(tmp_path / "g.npz", embedding=np.zeros((3, 2)), label=[1, 2, 3])
  with pytest.raises(SystemExit, match=r"--query file '.*q.npz' has no array 'camera'.*it has: embedding, label"):
    evaluate_arrays.main(["--protocol", "reid", "--query", q, "--gallery", g])
  with pytest.raises(SystemExit, match=r"--query file '.*q.npz' has no array 'code'"):
    evaluate_arrays.main(["--protocol", "hashing", "--query", q, "--gallery", g])


def test_flag_errors(tmp_path, capsys):
  q = save(tmp_path / "q.npz", embedding=np.zeros((3, 2)), label=[1, 2, 3])
  with pytest.raises(SystemExit):
    evaluate_arrays.main(["--protocol", "reid", "--query", q])
  assert "--protocol reid needs --gallery" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    evaluate_arrays.main(["--protocol", "retrieval", "--query", q, "--ks", "1,x"])
  assert "--ks must be comma-separated integers" in capsys.readouterr().err
  with pytest.raises(SystemExit, match=r"ks must be positive integers; got \(0,\).*files: --query"):
    evaluate_arrays.main(["--protocol", "retrieval", "--query", q, "--ks", "0"])


def test_reid_with_reranking_and_query_expansion(tmp_path, capsys):
  rng = np.random.default_rng(3)
  q = dict(embedding=rng.normal(size=(20, 4)), label=rng.integers(1, 6, 20), camera=rng.integers(0, 2, 20))
  g = dict(embedding=rng.normal(size=(60, 4)), label=rng.integers(-1, 6, 60), camera=rng.integers(0, 2, 60))
  files = ("--protocol", "reid", "--query", save(tmp_path / "q.npz", **q), "--gallery", save(tmp_path / "g.npz", **g))
  args = (q["embedding"], q["label"], q["camera"], g["embedding"], g["label"], g["camera"])
  got = run_main(capsys, *files, "--rerank", "--rerank_k1=10", "--query_expansion", "--query_expansion_k=5")
  want = jaxret.eval.reid_metrics(*args, rerank=rerank.Settings(k1=10),
                                  query_expansion=query_expansion.Settings(k=5))
  assert got == pytest.approx(want)
  assert got != pytest.approx(run_main(capsys, *files))
  with pytest.raises(SystemExit, match="offered for reid"):
    evaluate_arrays.main(["--protocol", "retrieval", "--query", files[3], "--rerank"])
