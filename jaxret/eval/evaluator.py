"""Evaluators the train loop runs: embed a split with the method, score it with its field's protocol.

- `RetrievalEvaluator`: queries against a gallery, or the split against itself (Recall@K & co).
- `ReidEvaluator`: queries against a gallery, or the split divided into query / gallery by
  (identity, camera), Market-1501 style.
- `HashingEvaluator`: the split's codes (signs of the embedding) ranked against a database's: the
  method's learned database codes when it has them (`database_codes`), else the database re-encoded.
- `ClassificationEvaluator`: closed-set top-1 accuracy of the method's `classify_fn` logits.

Each has `run(params, method_state) -> dict[str, float]`; `make_evaluator` picks one by
`config.eval.protocol` (`EVALUATORS`; the protocol's record, its metric names and selection metric
are in `jaxret.protocols`).
When the method has an `attribute_fn` and the split's examples have "attributes", each also
reports `attribute_accuracy` and `attribute_accuracy/<name>` (`attribute_metrics`) over the
split's own examples (the queries; never the gallery or hashing database).
"""
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from jaxret import eval as eval_lib, mesh as mesh_lib, methods, protocols
from jaxret.eval import query_expansion as query_expansion_lib, rerank as rerank_lib
from jaxret.data import pipeline, splits, synthetic
from jaxret.ops.sign_codes import sign_codes
from jaxret.protocols import REENCODED
from jaxret.progress import Progress
from jaxret.user_errors import InputError

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
  """Runs a method's evaluation functions over every example of a source, sharded over the mesh:
  `embed_fn` ("embedding"), the optional `classify_fn` ("logits") and, for sources whose examples
  have "attributes", the optional `attribute_fn` ("predicted_attributes")."""

  def __init__(self, method: methods.Method, config: ml_collections.ConfigDict, mesh: Mesh):
    self.config = config
    self.mesh = mesh
    self.functions = {"embedding": method.embed_fn, "logits": method.classify_fn,
                      "predicted_attributes": method.attribute_fn_for(config), "database_codes": method.database_codes}
    self._programs = {}
    self._replicate = jax.jit(lambda x: x, out_shardings=mesh_lib.replicated(mesh))

  def _program(self, outputs: tuple[str, ...]):
    """One jitted program computing all of `outputs`, so XLA shares their forward pass."""
    if outputs not in self._programs:
      functions, config = {name: self.functions[name] for name in outputs}, self.config
      replicated = mesh_lib.replicated(self.mesh)
      self._programs[outputs] = jax.jit(
          lambda params, state, images: {name: f(params, state, images, config) for name, f in functions.items()},
          in_shardings=(replicated, replicated, mesh_lib.data_sharding(self.mesh)), out_shardings=replicated)
    return self._programs[outputs]

  def __call__(self, source: Any, params, method_state, fields=("label",), outputs=("embedding",),
               attributes: bool = True) -> dict[str, np.ndarray]:
    """-> {each of `outputs` ("embedding" float32 `[N, D]`, "logits" `[N, classes]`), each of `fields`
    `[N]`}, in source order; plus "attributes" (labels) and "predicted_attributes" `[N, K]` when
    `attributes` is set, the method predicts attributes for this config
    (`Method.attribute_fn_for`) and the examples have them."""
    dataset = pipeline.eval_dataset(source, global_batch=self.config.eval.batch_size,
                                    transform=pipeline.eval_transform(self.config),
                                    process_index=jax.process_index(), process_count=jax.process_count())
    columns = {}
    progress = Progress(len(source), "embedding", "images", enabled=jax.process_index() == 0)
    for i in range(len(dataset)):
      progress.update(min(self.config.eval.batch_size, len(source) - i * self.config.eval.batch_size))
      local = dataset[i]
      wanted, names = tuple(outputs), ("valid", *fields)
      if attributes and self.functions["predicted_attributes"] is not None and "attributes" in local:
        wanted, names = (*wanted, "predicted_attributes"), (*names, "attributes")
      batch = mesh_lib.global_batch({k: local[k] for k in ("image", *names)}, self.mesh)
      results = {**self._program(wanted)(params, method_state, batch["image"]),
                 **self._replicate({k: batch[k] for k in names})}
      for name, value in results.items():
        columns.setdefault(name, []).append(np.asarray(value))
    progress.close()
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
                                         ks=tuple(config.eval.ks), metric=config.eval.metric, mesh=self.embed.mesh,
                                         fprs=tuple(config.eval.fprs))
    return {**metrics, **self.embed.attribute_metrics(query, self.source)}


class ReidEvaluator:
  """Re-ID protocol (`jaxret.eval.reid_metrics`: `rank1/5/10/20`, `map`, `minp`) of the split's
  queries against `gallery`; when it is None, the split's first image of each (identity,
  camera) is a query and the rest is the gallery. `config.eval.rerank` / `query_expansion` turn on
  k-reciprocal re-ranking / average query expansion."""

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
    settings = self.embed.config.eval
    rerank = query_expansion = None
    if settings.rerank:
      rerank = rerank_lib.Settings(settings.rerank_k1, settings.rerank_k2, settings.rerank_lambda)
    if settings.query_expansion:
      query_expansion = query_expansion_lib.Settings(settings.query_expansion_k, settings.query_expansion_alpha)
    metrics = eval_lib.reid_metrics(q["embedding"], q["label"], q["camera"], g["embedding"], g["label"],
                                    g["camera"], metric=settings.metric, mesh=self.embed.mesh, rerank=rerank,
                                    query_expansion=query_expansion, fprs=tuple(settings.fprs))
    return {**metrics, **attribute_metrics}


class HashingEvaluator:
  """Hashing protocol (`jaxret.eval.hashing_metrics`: `map`, `map_tie_aware`, `map@K` when
  `config.eval.topk`, `skipped_queries`): query codes sign(embedding) in {-1, +1} (0 -> +1)
  ranked by Hamming distance against all of `database`, whose codes are

  - for a method with `database_codes` (A2-Net, ADSH): the learned codes Z of the training
    images, row j for database item j (`database` must be the training set, in its order), as
    ADSH's and SEMICON's public code score (`rB = V`, `B`): in asymmetric hashing Z is the
    database's code, the variable trained; the same metrics against the database re-encoded by
    the network are reported beside them as `reencoded/map`, `reencoded/map_tie_aware`, ...;
  - otherwise the signs of the network's embedding of every database image.

  Queries with no relevant item: `config.eval.hashing_empty_queries` ("skip" or "zero").
  """

  def __init__(self, source: Any, database: Any, embedder: Embedder):
    self.source, self.database, self.embed = source, database, embedder

  def run(self, params, method_state) -> dict[str, float]:
    config = self.embed.config
    query = self.embed(self.source, params, method_state)
    database = self.embed(self.database, params, method_state, attributes=False)
    codes = [sign_codes(x["embedding"]) for x in (query, database)]
    score = lambda db_codes: eval_lib.hashing_metrics(
        codes[0], query["label"], db_codes, database["label"], topk=config.eval.topk or None,
        mesh=self.embed.mesh, empty_queries=config.eval.hashing_empty_queries)
    metrics = score(codes[1])
    learned = self.embed.functions["database_codes"]
    if learned is not None:
      z = np.asarray(jax.device_get(learned(params, method_state, config)))
      if z.shape != codes[1].shape:
        raise ValueError(f"{config.method}.database_codes gave codes of shape {z.shape} for a hashing "
                         f"database of {codes[1].shape[0]} images with {codes[1].shape[1]} bits: expected "
                         "the database to be the training set (one learned code per training image)")
      reencoded = {f"{REENCODED}/{k}": v for k, v in metrics.items() if k != "skipped_queries"}
      metrics = {**score(sign_codes(z)), **reencoded}
    return {**metrics, **self.embed.attribute_metrics(query, self.source)}


class ClassificationEvaluator:
  """Closed-set classification: `accuracy`, the fraction of the split's examples whose arg-max
  `classify_fn` logit is their class. Logit i is training class `train_classes[i]` (the order in
  which the training pipeline numbers the classes)."""

  def __init__(self, source: Any, train_classes: tuple[int, ...], embedder: Embedder):
    if embedder.functions["logits"] is None:
      raise InputError(f"config.eval.protocol='classification' needs a method with classify_fn; "
                       f"config.method={embedder.config.method!r} has none")
    self.source, self.embed = source, embedder
    self.class_index = {int(c): i for i, c in enumerate(train_classes)}

  def run(self, params, method_state) -> dict[str, float]:
    split = self.embed(self.source, params, method_state, outputs=("logits",))
    unknown = sorted(set(split["label"].tolist()) - set(self.class_index))
    if unknown:
      raise ValueError(f"classification: the split has classes {unknown[:10]} that training never saw")
    labels = np.array([self.class_index[int(c)] for c in split["label"]])
    accuracy = float(np.mean(np.argmax(split["logits"], axis=-1) == labels))
    return {"accuracy": accuracy, **self.embed.attribute_metrics(split, self.source)}


EVALUATORS = {"retrieval": RetrievalEvaluator, "reid": ReidEvaluator, "hashing": HashingEvaluator,
              "classification": ClassificationEvaluator}  # one per jaxret.protocols.PROTOCOLS


def make_evaluator(source: Any, gallery: Any | None, embedder: Embedder, train_classes: tuple[int, ...] = ()):
  """The evaluator of `config.eval.protocol` for `source` (queries) and `gallery` (gallery or
  hashing database; None for retrieval and re-ID: the split is its own gallery). `train_classes`:
  the training classes in logit order (classification only)."""
  protocol = protocols.get_protocol(embedder.config)
  if protocol.gallery_is_train and gallery is None:
    raise InputError(f"config.eval.protocol={protocol.name!r} needs a dataset with a hashing database "
                     "split (the training set, as the gallery)")
  if protocol.name == "classification":
    return ClassificationEvaluator(source, train_classes, embedder)
  return EVALUATORS[protocol.name](source, gallery, embedder)
