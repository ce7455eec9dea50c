"""Evaluators the train loop runs: embed a split with the method, score it with its field's protocol.

- `RetrievalEvaluator`: queries against a gallery, or the split against itself (Recall@K & co).
- `ReidEvaluator`: queries against a gallery, or the split divided into query / gallery by
  (identity, camera), Market-1501 style.
- `HashingEvaluator`: the split's codes (signs of the embedding) ranked against a database's.

Each has `run(params, method_state) -> dict[str, float]`; `make_evaluator` picks one by
`config.eval.protocol`, and `SELECTION_METRICS` names the metric that picks the best checkpoint.
When the method has an `attribute_fn` and the split's examples have "attributes", each also
reports `attribute_accuracy` and `attribute_accuracy/<name>` (`attribute_metrics`) over the
split's own examples (the queries; never the gallery or hashing database).
"""
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from jaxret import eval as eval_lib
from jaxret.data import pipeline, splits, synthetic
from jaxret.train import mesh as mesh_lib

# The default validation metric for model selection, per protocol (higher is better).
SELECTION_METRICS = {"retrieval": "recall@1", "reid": "map", "hashing": "map"}


def metric_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The metrics the evaluator of `config.eval.protocol` reports."""
  if config.eval.protocol == "retrieval":
    return tuple(f"recall@{k}" for k in config.eval.ks) + ("precision@1", "r_precision", "map@r", "map", "nmi")
  if config.eval.protocol == "reid":
    return ("rank1", "rank5", "rank10", "rank20", "map", "minp")
  return ("map", "map_tie_aware") + ((f"map@{config.eval.topk}",) if config.eval.topk else ())


def selection_metric(config: ml_collections.ConfigDict) -> str:
  return config.eval.selection_metric or SELECTION_METRICS[config.eval.protocol]


def attribute_metrics(predicted: np.ndarray, labels: np.ndarray,
                      names: tuple[str, ...] | None = None) -> dict[str, float]:
  """Attribute accuracy of predicted values int `[N, K]` against `labels` `[N, K]` (-1 unknown):
  `attribute_accuracy/<name>` (`names[k]`, else k) is attribute k's accuracy over the examples
  that know it, `attribute_accuracy` the mean over the attributes known anywhere; {} when none is."""
  predicted, labels = np.asarray(predicted), np.asarray(labels)
  if predicted.shape != labels.shape:
    raise ValueError(f"attribute_fn predicted attributes of shape {predicted.shape} for labels of shape "
                     f"{labels.shape}: expected one value per attribute of the dataset")
  known = labels >= 0
  counts = known.sum(axis=0)
  accuracy = ((predicted == labels) & known).sum(axis=0) / np.maximum(counts, 1)
  names = names if names is not None and len(names) == labels.shape[1] else tuple(map(str, range(labels.shape[1])))
  metrics = {f"attribute_accuracy/{name}": float(a) for name, a, n in zip(names, accuracy, counts) if n}
  if metrics:
    metrics = {"attribute_accuracy": float(np.mean(accuracy[counts > 0])), **metrics}
  return metrics


def attribute_names(source: Any) -> tuple[str, ...] | None:
  """The attribute names of a source (prepared datasets' metadata "attribute_names", synthetic
  creatures' `ATTRIBUTE_NAMES`), looking through `Subset`s; None when it has none."""
  while source is not None:
    if isinstance(source, synthetic.SyntheticSource):
      return synthetic.ATTRIBUTE_NAMES
    names = (getattr(source, "metadata", None) or {}).get("attribute_names")
    if names:
      return tuple(names)
    source = getattr(source, "source", None)
  return None


class Embedder:
  """Embeds every example of a source with `method.embed_fn`, sharded over the mesh; with the
  optional `method.attribute_fn`, also predicts the attributes of sources that have them."""

  def __init__(self, method, config: ml_collections.ConfigDict, mesh: Mesh):
    self.config = config
    self.mesh = mesh
    replicated = mesh_lib.replicated(mesh)
    shardings = dict(in_shardings=(replicated, replicated, mesh_lib.data_sharding(mesh)), out_shardings=replicated)
    self._embed = jax.jit(lambda params, state, images: method.embed_fn(params, state, images, config), **shardings)
    self._embed_with_attributes = None
    attribute_fn = getattr(method, "attribute_fn", None)
    if attribute_fn is not None:  # one program: XLA shares the forward pass of the two functions
      self._embed_with_attributes = jax.jit(
          lambda params, state, images: (method.embed_fn(params, state, images, config),
                                         attribute_fn(params, state, images, config)), **shardings)
    self._replicate = jax.jit(lambda x: x, out_shardings=replicated)

  def __call__(self, source: Any, params, method_state, fields=("label",),
               attributes: bool = True) -> dict[str, np.ndarray]:
    """-> {"embedding": float32 `[N, D]`, and each of `fields`: `[N]`}, in source order; plus
    "attributes" (labels) and "predicted_attributes" `[N, K]` when `attributes` is set, the method
    predicts attributes (`attribute_fn` returns an array, not None) and the examples have them."""
    dataset = pipeline.eval_dataset(source, global_batch=self.config.eval.batch_size,
                                    transform=pipeline.eval_transform(self.config),
                                    process_index=jax.process_index(), process_count=jax.process_count())
    columns = {name: [] for name in ("embedding", "valid", *fields)}
    for i in range(len(dataset)):
      local = dataset[i]
      names = fields
      if attributes and self._embed_with_attributes is not None and "attributes" in local:
        names = (*fields, "attributes")
      batch = mesh_lib.global_batch({k: local[k] for k in ("image", "valid", *names)}, self.mesh)
      if "attributes" in names:
        embedding, predicted = self._embed_with_attributes(params, method_state, batch["image"])
        if predicted is not None:
          columns.setdefault("predicted_attributes", []).append(np.asarray(predicted))
          columns.setdefault("attributes", [])
      else:
        embedding = self._embed(params, method_state, batch["image"])
      columns["embedding"].append(np.asarray(embedding))
      meta = self._replicate({k: batch[k] for k in ("valid", *names)})
      for name in ("valid", *names):
        if name in columns:
          columns[name].append(np.asarray(meta[name]))
    valid = np.concatenate(columns.pop("valid"))
    return {name: np.concatenate(parts)[valid] for name, parts in columns.items()}

  def attribute_metrics(self, embedded: dict[str, np.ndarray], source: Any) -> dict[str, float]:
    """`attribute_metrics` of an output of `__call__` on `source`; {} without predicted attributes."""
    if "predicted_attributes" not in embedded:
      return {}
    return attribute_metrics(embedded["predicted_attributes"], embedded["attributes"], attribute_names(source))


class RetrievalEvaluator:
  """Metric-learning protocol: `recall@K` for `config.eval.ks`, `precision@1`, `r_precision`,
  `map@r`, `map` and `nmi` (`jaxret.eval.retrieval_metrics`) of the split's queries against
  `gallery`, or against the split itself (each query excluding itself) when it is None."""

  def __init__(self, source: Any, gallery: Any | None, embedder: Embedder):
    self.source, self.gallery, self.embed = source, gallery, embedder

  def run(self, params, method_state) -> dict[str, float]:
    query = self.embed(self.source, params, method_state)
    gallery = {"embedding": None, "label": None}
    if self.gallery is not None:
      gallery = self.embed(self.gallery, params, method_state, attributes=False)
    config = self.embed.config
    metrics = eval_lib.retrieval_metrics(query["embedding"], query["label"], gallery["embedding"], gallery["label"],
                                         ks=tuple(config.eval.ks), metric=config.eval.metric, mesh=self.embed.mesh)
    return {**metrics, **self.embed.attribute_metrics(query, self.source)}


class ReidEvaluator:
  """Re-ID protocol (`jaxret.eval.reid_metrics`: `rank1/5/10/20`, `map`, `minp`) of the split's
  queries against `gallery`; when it is None, the split's first image of each (identity,
  camera) is a query and the rest is the gallery."""

  def __init__(self, source: Any, gallery: Any | None, embedder: Embedder):
    self.source, self.gallery, self.embed = source, gallery, embedder

  def run(self, params, method_state) -> dict[str, float]:
    fields = ("label", "camera")
    q = self.embed(self.source, params, method_state, fields)
    attribute_metrics = self.embed.attribute_metrics(q, self.source)
    if self.gallery is not None:
      g = self.embed(self.gallery, params, method_state, fields, attributes=False)
    else:
      query, gallery = splits.reid_query_gallery(q["label"], q["camera"])
      q, g = ({k: v[i] for k, v in q.items()} for i in (query, gallery))
    metrics = eval_lib.reid_metrics(q["embedding"], q["label"], q["camera"], g["embedding"], g["label"],
                                    g["camera"], metric=self.embed.config.eval.metric, mesh=self.embed.mesh)
    return {**metrics, **attribute_metrics}


class HashingEvaluator:
  """Hashing protocol (`jaxret.eval.hashing_metrics`: `map`, `map_tie_aware`, `map@K` when
  `config.eval.topk`): codes sign(embedding) in {-1, +1} (0 -> +1), the split's queries ranked
  against all of `database` by Hamming distance."""

  def __init__(self, source: Any, database: Any, embedder: Embedder):
    self.source, self.database, self.embed = source, database, embedder

  def run(self, params, method_state) -> dict[str, float]:
    query = self.embed(self.source, params, method_state)
    database = self.embed(self.database, params, method_state, attributes=False)
    codes = [np.where(x["embedding"] >= 0, 1, -1).astype(np.int8) for x in (query, database)]
    topk = self.embed.config.eval.topk or None
    metrics = eval_lib.hashing_metrics(codes[0], query["label"], codes[1], database["label"],
                                       topk=topk, mesh=self.embed.mesh)
    return {**metrics, **self.embed.attribute_metrics(query, self.source)}


def make_evaluator(source: Any, gallery: Any | None, embedder: Embedder):
  """The evaluator of `config.eval.protocol` for the queries `source` against `gallery` (the
  hashing database; None for retrieval and re-ID: the split is its own gallery)."""
  protocol = embedder.config.eval.protocol
  if protocol == "hashing":
    if gallery is None:
      raise ValueError("config.eval.protocol='hashing' needs a dataset with a hashing database split")
    return HashingEvaluator(source, gallery, embedder)
  return {"retrieval": RetrievalEvaluator, "reid": ReidEvaluator}[protocol](source, gallery, embedder)
