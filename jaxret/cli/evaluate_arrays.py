"""Evaluates saved embeddings or hash codes and prints the metrics as one JSON line.

  jaxret-evaluate-arrays --protocol retrieval --query Q.npz [--gallery G.npz] [--ks 1,2,4]
  jaxret-evaluate-arrays --protocol reid --query Q.npz --gallery G.npz [--rerank] [--query_expansion]
  jaxret-evaluate-arrays --protocol hashing --query Q.npz --gallery DB.npz [--topk 1000]
  (from a checkout: python -m launch.evaluate_arrays ...)

Each .npz holds `embedding` [N, D] (retrieval, reid) or `code` [N, bits] (hashing), `label` [N]
(class, identity; multi-hot [N, L] allowed for hashing) and, for reid, `camera` [N].
Definitions of every metric: `jaxret.eval` (retrieval.py, reid.py, hashing.py).
"""
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
from absl import flags

from jaxret.cli import command
from jaxret.user_errors import InputError

FLAGS = flags.FlagValues()
_PROTOCOL = flags.DEFINE_enum("protocol", None, ("retrieval", "reid", "hashing"), "Protocol to score.",
                              flag_values=FLAGS)
_QUERY = flags.DEFINE_string("query", None, "Queries .npz.", flag_values=FLAGS)
_GALLERY = flags.DEFINE_string("gallery", None, "Gallery / database .npz (retrieval: default = the queries).",
                               flag_values=FLAGS)
_KS = flags.DEFINE_list("ks", ["1", "2", "4", "8", "16", "32"], "Retrieval: the K of recall@K.", flag_values=FLAGS)
_TOPK = flags.DEFINE_integer("topk", None, "Hashing: also report map@TOPK.", flag_values=FLAGS)
_METRIC = flags.DEFINE_enum("metric", None, ("cosine", "euclidean"),
                            "Retrieval: cosine (default) or euclidean; reid: euclidean (default) or cosine.",
                            flag_values=FLAGS)
_FPRS = flags.DEFINE_list("fprs", [], "Retrieval and reid: report TPR at these false positive rates, e.g. "
                          "1e-4,1e-3,1e-2 (jaxret.eval.verification; more passes over all pairs).", flag_values=FLAGS)
_NMI = flags.DEFINE_bool("nmi", True, "Retrieval: report NMI (k-means); --nonmi skips it.", flag_values=FLAGS)
_RERANK = flags.DEFINE_bool("rerank", False, "Reid: rank by k-reciprocal re-ranking (jaxret.eval.rerank).",
                            flag_values=FLAGS)
_RERANK_K1 = flags.DEFINE_integer("rerank_k1", 20, "Re-ranking's k1.", lower_bound=1, flag_values=FLAGS)
_RERANK_K2 = flags.DEFINE_integer("rerank_k2", 6, "Re-ranking's k2.", lower_bound=1, flag_values=FLAGS)
_RERANK_LAMBDA = flags.DEFINE_float("rerank_lambda", 0.3, "Re-ranking's lambda.", lower_bound=0.0, upper_bound=1.0,
                                    flag_values=FLAGS)
_QUERY_EXPANSION = flags.DEFINE_bool("query_expansion", False, "Reid: alpha-weighted average query expansion first "
                                     "(jaxret.eval.query_expansion).", flag_values=FLAGS)
_QE_K = flags.DEFINE_integer("query_expansion_k", 10, "Query expansion's k.", lower_bound=1, flag_values=FLAGS)
_QE_ALPHA = flags.DEFINE_float("query_expansion_alpha", 3.0, "Query expansion's alpha.", flag_values=FLAGS)
flags.mark_flags_as_required(["protocol", "query"], flag_values=FLAGS)


def load(path: str, names: Sequence[str], *, flag: str, protocol: str) -> dict[str, np.ndarray]:
  """The arrays `names` of the .npz at `path`; an InputError naming the file and array when absent."""
  if not os.path.isfile(path):
    raise InputError(f"{flag} file {path!r} does not exist.")
  try:
    with np.load(path, allow_pickle=False) as npz:
      missing = [name for name in names if name not in npz.files]
      if missing:
        present = ", ".join(npz.files) or "nothing"
        raise InputError(f"{flag} file {path!r} has no array {missing[0]!r} (--protocol "
                         f"{protocol} needs {', '.join(names)}); it has: {present}.")
      return {name: npz[name] for name in names}
  except InputError:
    raise
  except (OSError, ValueError) as e:
    raise InputError(f"{flag} file {path!r} is not a readable .npz: {e}") from e


def use_every_cpu_core(environ=os.environ) -> None:
  """One XLA:CPU device per core unless XLA_FLAGS sets a count (call before JAX starts).

  The metrics shard their queries over the devices, and XLA:CPU runs one device's gathers,
  scatters and sorts on a single core; accelerator hosts are unaffected (JAX picks their devices)."""
  xla_flags = environ.get("XLA_FLAGS", "")
  if "--xla_force_host_platform_device_count" not in xla_flags:
    environ["XLA_FLAGS"] = f"{xla_flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()


def evaluate(protocol: str, query: str, gallery: str | None, ks: tuple[int, ...], topk: int | None,
             metric: str | None, nmi: bool, reid_options: dict | None = None,
             fprs: tuple[float, ...] = ()) -> dict[str, float]:
  """The metrics of `protocol` on the files `query` and `gallery`; `reid_options`: `reid_metrics`'
  `rerank` and `query_expansion`."""
  import jaxret.eval  # pylint: disable=import-outside-toplevel  (JAX starts only after the flags)

  if protocol == "retrieval":
    names = ("embedding", "label")
    q = load(query, names, flag="--query", protocol=protocol)
    g = load(gallery, names, flag="--gallery", protocol=protocol) if gallery else None
    g = g or {"embedding": None, "label": None}
    return jaxret.eval.retrieval_metrics(q["embedding"], q["label"], g["embedding"], g["label"], ks=ks,
                                         metric=metric or "cosine", with_nmi=nmi,
                                         fprs=fprs)
  if protocol == "reid":
    names = ("embedding", "label", "camera")
    q = load(query, names, flag="--query", protocol=protocol)
    g = load(gallery, names, flag="--gallery", protocol=protocol)
    return jaxret.eval.reid_metrics(q["embedding"], q["label"], q["camera"], g["embedding"], g["label"],
                                    g["camera"], metric=metric or "euclidean", fprs=fprs,
                                    **(reid_options or {}))
  names = ("code", "label")
  q = load(query, names, flag="--query", protocol=protocol)
  g = load(gallery, names, flag="--gallery", protocol=protocol)
  return jaxret.eval.hashing_metrics(q["code"], q["label"], g["code"], g["label"], topk=topk)


def _evaluate(positional: list[str]) -> None:
  """Prints exactly one JSON line of metrics (NaN as null) on stdout."""
  if positional:
    raise flags.Error(f"unexpected arguments {positional}: every setting is a flag")
  protocol, query, gallery = _PROTOCOL.value, _QUERY.value, _GALLERY.value
  if protocol in ("reid", "hashing") and gallery is None:
    what = "database" if protocol == "hashing" else "gallery"
    raise InputError(f"--protocol {protocol} needs --gallery (the {what} .npz)")
  try:
    ks = tuple(int(k) for k in _KS.value)
  except ValueError:
    raise InputError(f"--ks must be comma-separated integers such as 1,2,4; got {','.join(_KS.value)!r}") from None
  try:
    fprs = tuple(float(f) for f in _FPRS.value)
  except ValueError:
    raise InputError(f"--fprs must be comma-separated rates such as 1e-4,1e-3; got {','.join(_FPRS.value)!r}") from None
  if (_RERANK.value or _QUERY_EXPANSION.value) and protocol != "reid":
    raise InputError(f"--rerank / --query_expansion with --protocol {protocol}: they are offered for reid")
  use_every_cpu_core()
  from jaxret.eval import query_expansion, rerank  # pylint: disable=import-outside-toplevel
  reid_options = {
      "rerank": rerank.Settings(_RERANK_K1.value, _RERANK_K2.value, _RERANK_LAMBDA.value) if _RERANK.value else None,
      "query_expansion": query_expansion.Settings(_QE_K.value, _QE_ALPHA.value) if _QUERY_EXPANSION.value else None}
  try:
    metrics = evaluate(protocol, query, gallery, ks, _TOPK.value, _METRIC.value, _NMI.value, reid_options, fprs)
  except InputError:
    raise
  except ValueError as e:  # arrays the metrics cannot score: say which files
    files = f"--query {query}" + (f", --gallery {gallery}" if gallery else "")
    raise InputError(f"{e} (files: {files})") from e
  clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
  print(json.dumps(clean, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> int:
  """The command on `argv` (default: the process's arguments) -> exit status."""
  return command.run(_evaluate, FLAGS, argv, __doc__)


def console_main() -> None:
  """The `jaxret-evaluate-arrays` console script."""
  sys.exit(main())
