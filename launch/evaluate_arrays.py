"""Evaluates saved embeddings or hash codes and prints the metrics as one JSON line.

  python -m launch.evaluate_arrays --protocol retrieval --query Q.npz [--gallery G.npz] [--ks 1,2,4]
  python -m launch.evaluate_arrays --protocol reid --query Q.npz --gallery G.npz
  python -m launch.evaluate_arrays --protocol hashing --query Q.npz --gallery DB.npz [--topk 1000]

Each .npz holds `embedding` [N, D] (retrieval, reid) or `code` [N, bits] (hashing), `label` [N]
(class, identity; multi-hot [N, L] allowed for hashing) and, for reid, `camera` [N].
Definitions of every metric: `jaxret.eval` (retrieval.py, reid.py, hashing.py).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np

PROTOCOLS = ("retrieval", "reid", "hashing")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  """Command-line flags; argparse exits with a message on bad ones."""
  parser = argparse.ArgumentParser(prog="python -m launch.evaluate_arrays", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
  parser.add_argument("--query", required=True, help="queries .npz")
  parser.add_argument("--gallery", help="gallery / database .npz (retrieval: default = the queries)")
  parser.add_argument("--ks", default="1,2,4,8,16,32", help="retrieval: comma-separated K of recall@K")
  parser.add_argument("--topk", type=int, help="hashing: also report map@TOPK")
  parser.add_argument("--metric", help="retrieval: cosine (default) or euclidean; reid: euclidean "
                      "(default) or cosine")
  parser.add_argument("--no-nmi", dest="nmi", action="store_false", help="retrieval: skip NMI (k-means)")
  args = parser.parse_args(argv)
  if args.protocol in ("reid", "hashing") and args.gallery is None:
    what = "database" if args.protocol == "hashing" else "gallery"
    parser.error(f"--protocol {args.protocol} needs --gallery (the {what} .npz)")
  try:
    args.ks = tuple(int(k) for k in args.ks.split(","))
  except ValueError:
    parser.error(f"--ks must be comma-separated integers such as 1,2,4; got {args.ks!r}")
  return args


def load(path: str, names: Sequence[str], *, flag: str, protocol: str) -> dict[str, np.ndarray]:
  """The arrays `names` of the .npz at `path`; SystemExit naming the file and array when absent."""
  if not os.path.isfile(path):
    raise SystemExit(f"error: {flag} file {path!r} does not exist.")
  try:
    with np.load(path, allow_pickle=False) as npz:
      missing = [name for name in names if name not in npz.files]
      if missing:
        present = ", ".join(npz.files) or "nothing"
        raise SystemExit(f"error: {flag} file {path!r} has no array {missing[0]!r} (--protocol "
                         f"{protocol} needs {', '.join(names)}); it has: {present}.")
      return {name: npz[name] for name in names}
  except (OSError, ValueError) as e:
    raise SystemExit(f"error: {flag} file {path!r} is not a readable .npz: {e}") from e


def use_every_cpu_core(environ=os.environ) -> None:
  """One XLA:CPU device per core unless XLA_FLAGS sets a count (call before JAX starts).

  The metrics shard their queries over the devices, and XLA:CPU runs one device's gathers,
  scatters and sorts on a single core; accelerator hosts are unaffected (JAX picks their devices)."""
  flags = environ.get("XLA_FLAGS", "")
  if "--xla_force_host_platform_device_count" not in flags:
    environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()


def evaluate(args: argparse.Namespace) -> dict[str, float]:
  """Runs the protocol of `args` on its files."""
  use_every_cpu_core()
  import jaxret.eval  # pylint: disable=import-outside-toplevel  (jax starts only after flags parse)

  if args.protocol == "retrieval":
    names = ("embedding", "label")
    q = load(args.query, names, flag="--query", protocol=args.protocol)
    g = load(args.gallery, names, flag="--gallery", protocol=args.protocol) if args.gallery else None
    g = g or {"embedding": None, "label": None}
    return jaxret.eval.retrieval_metrics(q["embedding"], q["label"], g["embedding"], g["label"], ks=args.ks,
                                         metric=args.metric or "cosine", with_nmi=args.nmi)
  if args.protocol == "reid":
    names = ("embedding", "label", "camera")
    q = load(args.query, names, flag="--query", protocol=args.protocol)
    g = load(args.gallery, names, flag="--gallery", protocol=args.protocol)
    return jaxret.eval.reid_metrics(q["embedding"], q["label"], q["camera"], g["embedding"], g["label"],
                                    g["camera"], metric=args.metric or "euclidean")
  names = ("code", "label")
  q = load(args.query, names, flag="--query", protocol=args.protocol)
  g = load(args.gallery, names, flag="--gallery", protocol=args.protocol)
  return jaxret.eval.hashing_metrics(q["code"], q["label"], g["code"], g["label"], topk=args.topk)


def main(argv: Sequence[str] | None = None) -> int:
  """Prints exactly one JSON line of metrics (NaN as null) on stdout."""
  args = parse_args(argv)
  try:
    metrics = evaluate(args)
  except ValueError as e:
    files = f"--query {args.query}" + (f", --gallery {args.gallery}" if args.gallery else "")
    raise SystemExit(f"error: {e} (files: {files})") from e
  clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
  print(json.dumps(clean, sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
