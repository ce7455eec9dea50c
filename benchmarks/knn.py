"""Exact 100k x 100k k-NN evaluation: Recall@{1,2,4,8} of 512-d embeddings, jaxret vs PyTorch and faiss.

  python benchmarks/knn.py                  # all three engines, one JSON line
  python benchmarks/knn.py --n 20000        # smaller

Each engine runs in its own fresh process (so its peak host memory, `ru_maxrss`, is its own)
on the same synthetic data: n embeddings in n/10 classes (class centre + Gaussian noise),
the query set is the gallery set and each query excludes itself, cosine similarity.
- jaxret: `jaxret.eval.retrieval_metrics(..., full_ranking=False, with_nmi=False)` (chunked
  exact top-k, default block sizes), one XLA:CPU device per core as `launch.evaluate_arrays` sets
  them (queries sharded over the devices).
- torch: what a PyTorch user writes: normalise, then per block of 4096 queries `q @ g.T`, the
  query itself masked, `torch.topk(k = max(ks))`.
- faiss: exact brute force `faiss.IndexFlatIP` on the L2-normalised embeddings, k = max(ks) + 1,
  the query itself dropped. faiss is only a benchmark dependency (pip install faiss-cpu).
Wall times exclude data generation; peak memory (taken right after the timed part) includes
the data (n x dim float32). Afterwards each engine saves its neighbour lists, and "agreement"
reports where jaxret's and faiss's differ and by how much the float64 cosines of the swapped
items differ. The line has the keys of every benchmark here (case, device, jaxret_img_s,
torch_img_s, ratio = jaxret / torch, peak_mem_mb = jaxret's), img_s counting queries per second,
plus faiss_img_s and faiss_ratio = jaxret / faiss.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(n: int, dim: int, seed: int, class_size: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """Embeddings `[n, dim]` float32 in n / class_size classes (class centre + noise, built in
  chunks) and labels `[n]`."""
  rng = np.random.default_rng(seed)
  labels = rng.permutation(np.arange(n) % max(1, n // class_size))
  centres = rng.standard_normal((labels.max() + 1, dim), dtype=np.float32)
  emb = np.empty((n, dim), np.float32)
  for start in range(0, n, 8192):
    stop = min(n, start + 8192)
    emb[start:stop] = centres[labels[start:stop]] + 2.5 * rng.standard_normal((stop - start, dim), dtype=np.float32)
  return emb, labels


def peak_rss_bytes() -> int:
  """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_jaxret(emb: np.ndarray, labels: np.ndarray, ks: tuple[int, ...]) -> dict:
  """Recall@K with `jaxret.eval.retrieval_metrics` (exact chunked top-k search); timed and measured."""
  sys.path.insert(0, REPO)
  from jaxret.cli import evaluate_arrays  # pylint: disable=import-outside-toplevel
  evaluate_arrays.use_every_cpu_core()
  import jax  # pylint: disable=import-outside-toplevel
  import jaxret.eval  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  metrics = jaxret.eval.retrieval_metrics(emb, labels, ks=ks, with_nmi=False, full_ranking=False)
  return {"wall_s": time.perf_counter() - start, "peak_rss_bytes": peak_rss_bytes(),
          "jax_version": jax.__version__, "devices": [str(d) for d in jax.devices()],
          "recall": {k: metrics[f"recall@{k}"] for k in ks}}


def jaxret_neighbours(emb: np.ndarray, k: int) -> np.ndarray:
  """`[n, k]` neighbour indices from `jaxret.eval.nearest_neighbours` (run after the measurement)."""
  import jaxret.eval  # pylint: disable=import-outside-toplevel

  return jaxret.eval.nearest_neighbours(emb, k=k).indices


def run_faiss(emb: np.ndarray, labels: np.ndarray, ks: tuple[int, ...]) -> tuple[dict, np.ndarray]:
  """Recall@K with faiss exact inner-product search on normalised vectors (self dropped)."""
  import faiss  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  faiss.normalize_L2(emb)
  index = faiss.IndexFlatIP(emb.shape[1])
  index.add(emb)
  _, found = index.search(emb, max(ks) + 1)
  del index
  neighbours = np.stack([row[row != i][:max(ks)] for i, row in enumerate(found)])
  hits = labels[neighbours] == labels[:, None]
  return {"wall_s": time.perf_counter() - start, "peak_rss_bytes": peak_rss_bytes(),
          "faiss_version": faiss.__version__, "threads": faiss.omp_get_max_threads(),
          "recall": {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}}, neighbours


def run_torch(emb: np.ndarray, labels: np.ndarray, ks: tuple[int, ...], block: int = 4096) -> dict:
  """Recall@K with blocked `torch.mm` + `torch.topk` on normalised vectors (self masked)."""
  import torch  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  gallery = torch.nn.functional.normalize(torch.from_numpy(emb), dim=1)
  neighbours = []
  for i in range(0, len(gallery), block):
    sims = gallery[i:i + block] @ gallery.T
    sims[torch.arange(len(sims)), torch.arange(i, i + len(sims))] = -float("inf")
    neighbours.append(torch.topk(sims, max(ks), dim=1).indices)
  hits = labels[torch.cat(neighbours).numpy()] == labels[:, None]
  return {"wall_s": time.perf_counter() - start, "peak_rss_bytes": peak_rss_bytes(),
          "torch_version": torch.__version__, "threads": torch.get_num_threads(),
          "recall": {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}}


def compare(jaxret_nn: np.ndarray, faiss_nn: np.ndarray, emb: np.ndarray) -> dict:
  """Where the two top-k lists differ, the float64 cosine gap between the items each engine put
  at the first differing position: near zero means a near-tie that float32 rounding decides."""
  rows = np.nonzero((jaxret_nn != faiss_nn).any(axis=1))[0]
  gaps = []
  for i in rows:
    position = int(np.argmax(jaxret_nn[i] != faiss_nn[i]))
    a, b = jaxret_nn[i, position], faiss_nn[i, position]
    unit = lambda j: emb[j].astype(np.float64) / np.linalg.norm(emb[j].astype(np.float64))
    gaps.append(abs(unit(i) @ unit(a) - unit(i) @ unit(b)))
  return {"rows_with_different_neighbours": int(len(rows)),
          "max_float64_cosine_gap_at_first_difference": float(max(gaps, default=0.0))}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--n", type=int, default=100_000)
  parser.add_argument("--dim", type=int, default=512)
  parser.add_argument("--ks", default="1,2,4,8")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--engine", choices=("all", "jaxret", "torch", "faiss"), default="all")
  parser.add_argument("--neighbours", help="(one engine) also save its [n, max(ks)] neighbours to this .npy")
  args = parser.parse_args()
  ks = tuple(int(k) for k in args.ks.split(","))
  if args.engine == "all":
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
      for engine in ("jaxret", "torch", "faiss"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--n", str(args.n), "--dim",
                              str(args.dim), "--ks", args.ks, "--seed", str(args.seed), "--engine", engine]
                             + (["--neighbours", os.path.join(tmp, f"{engine}.npy")] if engine != "torch" else []),
                             capture_output=True, text=True, check=True)
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
      agreement = compare(np.load(os.path.join(tmp, "jaxret.npy")), np.load(os.path.join(tmp, "faiss.npy")),
                          make_data(args.n, args.dim, args.seed)[0])
    qps = {engine: args.n / result["wall_s"] for engine, result in results.items()}
    print(json.dumps({"case": f"knn_{args.n}x{args.dim}", "device": results["jaxret"]["devices"][0],
                      "jaxret_img_s": round(qps["jaxret"]), "torch_img_s": round(qps["torch"]),
                      "ratio": round(qps["jaxret"] / qps["torch"], 3),
                      "peak_mem_mb": round(results["jaxret"]["peak_rss_bytes"] / 2**20),
                      "faiss_img_s": round(qps["faiss"]), "faiss_ratio": round(qps["jaxret"] / qps["faiss"], 3),
                      "ks": list(ks), **results, "agreement": agreement}))
    return
  load_start = os.getloadavg()[0]  # other processes on the machine skew wall times
  start = time.perf_counter()
  emb, labels = make_data(args.n, args.dim, args.seed)
  data_s = time.perf_counter() - start
  if args.engine == "jaxret":
    result = run_jaxret(emb, labels, ks)
    neighbours = jaxret_neighbours(emb, max(ks)) if args.neighbours else None
  elif args.engine == "torch":
    result, neighbours = run_torch(emb, labels, ks), None
  else:
    result, neighbours = run_faiss(emb, labels, ks)
  result.update(data_s=data_s, peak_rss_gib=result["peak_rss_bytes"] / 2**30,
                load_avg_1min_start_end=[load_start, os.getloadavg()[0]])
  if args.neighbours:
    np.save(args.neighbours, neighbours)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
