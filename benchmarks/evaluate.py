"""The default retrieval protocol of a 50k set: `launch.evaluate_arrays` vs faiss and pytorch-metric-learning.

  python benchmarks/evaluate.py                 # n = 50,000, 500 classes of 100, 512-d
  python benchmarks/evaluate.py --n 10000

Data: n embeddings in n/100 classes (class centre + Gaussian noise, seed 0); the query set is
the gallery set and each query leaves itself out; cosine similarity. Each engine runs in its own
process, one after the other, timed from the start of its computation (data already in memory)
to its last metric; peak memory is the process's `ru_maxrss`.
- jaxret: the command a user runs, `python -m launch.evaluate_arrays --protocol retrieval
  --query Q.npz --ks 1,2,4,8`: recall@1,2,4,8, precision@1, R-precision, MAP@R, full mAP and NMI
  (scikit-learn k-means); and the same with `--nonmi`. Wall time of the whole command
  (start-up, loading and compilation included).
- faiss: exact `IndexFlatIP` top-9 search on the L2-normalised embeddings (top-8 + the query).
- pml: pytorch-metric-learning's `AccuracyCalculator` (precision_at_1, r_precision,
  mean_average_precision_at_r from its default faiss L2 k-NN of the largest class size) on the
  L2-normalised embeddings (so that it ranks by cosine too), the query set as its own reference.
- check: jaxret's "full_sort" reference kernel (`ranking.ranking_stats(method="full_sort")`) on
  the first `--check` queries against the whole gallery, and the new default on the same
  queries: the largest difference of any metric between them.
Prints one JSON line per engine with wall_s, peak_rss_mb and its metrics, then a summary line
with the ratios jaxret_wall / faiss_wall.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from knn import make_data, peak_rss_bytes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_faiss(emb: np.ndarray, labels: np.ndarray) -> dict:
  import faiss  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  x = emb.copy()
  faiss.normalize_L2(x)
  index = faiss.IndexFlatIP(x.shape[1])
  index.add(x)
  _, found = index.search(x, 9)
  wall = time.perf_counter() - start
  hits = labels[found[:, 1:]] == labels[:, None]
  return {"wall_s": wall, "faiss_version": faiss.__version__, "threads": faiss.omp_get_max_threads(),
          "recall@1": float(hits[:, 0].mean()), "recall@8": float(hits.any(axis=1).mean())}


def run_pml(emb: np.ndarray, labels: np.ndarray) -> dict:
  import pytorch_metric_learning  # pylint: disable=import-outside-toplevel
  from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  x = emb / np.linalg.norm(emb, axis=1, keepdims=True)  # its default faiss L2 k-NN then ranks by cosine
  calculator = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
                                  k="max_bin_count")
  metrics = calculator.get_accuracy(x, labels, x, labels, ref_includes_query=True)
  return {"wall_s": time.perf_counter() - start, "pml_version": pytorch_metric_learning.__version__,
          **{k: float(v) for k, v in metrics.items()}}


def run_check(emb: np.ndarray, labels: np.ndarray, num_queries: int) -> dict:
  sys.path.insert(0, REPO)
  from jaxret.eval import ranking  # pylint: disable=import-outside-toplevel

  index = np.arange(len(emb))
  args = dict(exclude_same=(index[:num_queries], index), topk=8)
  out = {}
  for method in ("full_sort", "relevant_ranks"):
    start = time.perf_counter()
    out[method] = ranking.ranking_stats(emb[:num_queries], labels[:num_queries], emb, labels,
                                        method=method, **args)
    out[f"{method}_wall_s"] = time.perf_counter() - start
  a, b = out["full_sort"], out["relevant_ranks"]
  return {"queries": num_queries, "full_sort_wall_s": out["full_sort_wall_s"],
          "relevant_ranks_wall_s": out["relevant_ranks_wall_s"],
          "integer_stats_equal": all(bool(np.array_equal(a[k], b[k])) for k in
                                     ("num_relevant", "first_rank", "last_rank", "hits_at_r", "hits_at_k")),
          "max_relative_sum_difference": max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-30)))
                                             for k in ("ap_sum", "ap_at_r_sum", "ap_at_k_sum"))}


def run_cli(path: str, extra: list[str]) -> dict:
  start = time.perf_counter()
  out = subprocess.run([sys.executable, "-m", "launch.evaluate_arrays", "--protocol", "retrieval",
                        "--query", path, "--ks", "1,2,4,8", *extra], cwd=REPO, capture_output=True,
                       text=True, check=True)
  wall = time.perf_counter() - start
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return {"wall_s": wall, "peak_rss_mb_of_largest_child": usage.ru_maxrss / 1024, **json.loads(out.stdout)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--n", type=int, default=50_000)
  parser.add_argument("--dim", type=int, default=512)
  parser.add_argument("--check", type=int, default=1024, help="queries for the full-sort comparison")
  parser.add_argument("--engine", choices=("all", "faiss", "pml", "check", "cli", "cli-no-nmi"), default="all")
  parser.add_argument("--data", help="(internal) the .npz of the embeddings")
  args = parser.parse_args()
  if args.engine == "all":
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "q.npz")
      emb, labels = make_data(args.n, args.dim, 0, class_size=100)
      np.savez(path, embedding=emb, label=labels)
      del emb, labels
      lines = {}
      for engine in ("cli", "cli-no-nmi", "faiss", "pml", "check"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--engine", engine, "--data", path,
                              "--check", str(args.check)], capture_output=True, text=True, check=True)
        lines[engine] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(lines[engine]), flush=True)
    faiss_wall = lines["faiss"]["wall_s"]
    print(json.dumps({"case": f"evaluate_arrays retrieval n={args.n} d={args.dim}", "cpus": os.cpu_count(),
                      "jaxret_s": lines["cli"]["wall_s"], "jaxret_no_nmi_s": lines["cli-no-nmi"]["wall_s"],
                      "faiss_top8_s": faiss_wall, "pml_s": lines["pml"]["wall_s"],
                      "jaxret_over_faiss": lines["cli"]["wall_s"] / faiss_wall,
                      "jaxret_no_nmi_over_faiss": lines["cli-no-nmi"]["wall_s"] / faiss_wall}))
    return
  with np.load(args.data) as npz:
    emb, labels = npz["embedding"], npz["label"]
  if args.engine in ("cli", "cli-no-nmi"):
    line = run_cli(args.data, ["--nonmi"] if args.engine == "cli-no-nmi" else [])
  elif args.engine == "check":
    line = {**run_check(emb, labels, args.check), "peak_rss_mb": peak_rss_bytes() / 2**20}
  else:
    line = {**{"faiss": run_faiss, "pml": run_pml}[args.engine](emb, labels), "peak_rss_mb": peak_rss_bytes() / 2**20}
  print(json.dumps({"engine": args.engine, **line}))


if __name__ == "__main__":
  main()
