"""k-reciprocal re-ranking of a 20k-image gallery: jaxret against fast-reid's `re_ranking`, same arrays.

  python benchmarks/rerank.py                                  # 2,000 queries, 20,000 gallery images
  python benchmarks/rerank.py --num_query 200 --num_gallery 2000

Each engine runs in its own fresh process (its peak host memory, `ru_maxrss`, is its own) on the
same synthetic re-ID embeddings (identities of 10 images, centre + Gaussian noise, 512-d float32,
Euclidean distance), k1 = 20, k2 = 6, lambda = 0.3, and writes the re-ranked query x gallery
distances:
- jaxret: `jaxret.eval.reranked_distances` (sparse neighbourhoods, query-chunked kernels), one
  XLA:CPU device per core as `evaluate_arrays` sets them.
- fastreid: `fastreid.evaluation.rerank.re_ranking(q_g_dist, q_q_dist, g_g_dist)` from the PyPI
  package `fastreid` 1.4.0 (a benchmark-only dependency, `pip install --no-deps fastreid==1.4.0`;
  the module file is loaded alone, it needs only NumPy), given the Euclidean distance matrices
  (computed in float64 by NumPy, not timed): the published algorithm, dense (Q + G)^2 matrices.
Wall times exclude data generation; "agreement" is the largest |jaxret - fastreid| distance and
the fraction of queries whose top-10 lists differ. One JSON line per run, appended to
benchmarks/results/rerank.jsonl with --record.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(num_query: int, num_gallery: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(queries `[Q, dim]`, gallery `[G, dim]`) float32: identity centres + noise, 10 images each."""
  rng = np.random.default_rng(seed)
  n = num_query + num_gallery
  centres = rng.normal(size=(n // 10 + 1, dim)).astype(np.float32)
  points = centres[np.arange(n) // 10] + 0.8 * rng.normal(size=(n, dim)).astype(np.float32)
  order = rng.permutation(n)
  return points[order[:num_query]], points[order[num_query:]]


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  a, b = a.astype(np.float64), b.astype(np.float64)
  d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
  return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)


def run_engine(engine: str, num_query: int, num_gallery: int, dim: int, out: str) -> dict:
  query, gallery = make_data(num_query, num_gallery, dim)
  if engine == "jaxret":
    from jaxret.cli import evaluate_arrays  # pylint: disable=import-outside-toplevel
    evaluate_arrays.use_every_cpu_core()
    from jaxret.eval import rerank  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    distances = rerank.reranked_distances(query, gallery)
  else:
    spec = importlib.util.find_spec("fastreid")
    if spec is None:
      raise SystemExit("fastreid is not installed: pip install --no-deps fastreid==1.4.0")
    path = os.path.join(spec.submodule_search_locations[0], "evaluation", "rerank.py")
    module_spec = importlib.util.spec_from_file_location("fastreid_rerank", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    q_g, q_q, g_g = euclidean(query, gallery), euclidean(query, query), euclidean(gallery, gallery)
    start = time.perf_counter()
    distances = module.re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3)
  seconds = time.perf_counter() - start
  peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  np.save(out, np.asarray(distances, np.float32))
  return {"engine": engine, "seconds": round(seconds, 2), "peak_rss_gb": round(peak_gb, 2)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_query", type=int, default=2000)
  parser.add_argument("--num_gallery", type=int, default=20000)
  parser.add_argument("--dim", type=int, default=512)
  parser.add_argument("--engine", choices=("jaxret", "fastreid"), help="(internal) run one engine")
  parser.add_argument("--out", help="(internal) where the engine saves its distances")
  parser.add_argument("--record", action="store_true", help="append the line to benchmarks/results/rerank.jsonl")
  args = parser.parse_args()
  if args.engine:
    print(json.dumps(run_engine(args.engine, args.num_query, args.num_gallery, args.dim, args.out)))
    return
  results, outputs = {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    for engine in ("jaxret", "fastreid"):
      outputs[engine] = os.path.join(tmp, f"{engine}.npy")
      done = subprocess.run([sys.executable, __file__, "--engine", engine, "--num_query", str(args.num_query),
                             "--num_gallery", str(args.num_gallery), "--dim", str(args.dim), "--out", outputs[engine]],
                            cwd=REPO, capture_output=True, text=True, check=True)
      results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, theirs = np.load(outputs["jaxret"]), np.load(outputs["fastreid"])
  top = lambda d: np.argsort(d, axis=1, kind="stable")[:, :10]
  line = {"case": f"rerank q={args.num_query} g={args.num_gallery} d={args.dim}", "cpus": os.cpu_count(),
          "machine": platform.processor() or platform.machine(),
          "jaxret_s": results["jaxret"]["seconds"], "jaxret_peak_rss_gb": results["jaxret"]["peak_rss_gb"],
          "fastreid_s": results["fastreid"]["seconds"],
          "fastreid_peak_rss_gb": results["fastreid"]["peak_rss_gb"],
          "speedup": round(results["fastreid"]["seconds"] / results["jaxret"]["seconds"], 2),
          "max_abs_difference": float(np.max(np.abs(ours - theirs))),
          "top10_lists_differ": float(np.mean(np.any(top(ours) != top(theirs), axis=1)))}
  print(json.dumps(line))
  if args.record:
    with open(os.path.join(REPO, "benchmarks", "results", "rerank.jsonl"), "a") as f:
      f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
  main()
