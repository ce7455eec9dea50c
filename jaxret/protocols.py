"""Evaluation protocols, one record each: what `config.eval.protocol` means to the dataset splits
(`jaxret.data.datasets`), the evaluators (`jaxret.eval.evaluator.EVALUATORS`), the search index
(`jaxret.image_index`) and the config checks (`jaxret.training.config`).

- retrieval: open-set metric learning (Recall@K & co); val / test hold classes never trained on.
- reid: person re-ID, Market-1501 style (CMC, mAP, mINP); official query / gallery splits.
- hashing: sign codes ranked by Hamming distance, queries against the training set (the database).
- classification: closed-set top-1 accuracy of the method's class logits.
"""
import dataclasses
from collections.abc import Callable

import ml_collections

from jaxret import methods
from jaxret.user_errors import InputError

REENCODED = "reencoded"  # hashing: prefix of the metrics against the re-encoded database


def tpr_name(fpr: float) -> str:
  """The metric "tpr@fpr=1e-04" of `config.eval.fprs` entry 1e-4 (`jaxret.eval.verification`)."""
  return f"tpr@fpr={fpr:.0e}"


@dataclasses.dataclass(frozen=True)
class Protocol:
  """One protocol. `metrics(config.eval)` names what its evaluator reports; `selection_metric`
  (higher is better) picks the best checkpoint unless `config.eval.selection_metric` says otherwise."""
  name: str
  closed_set: bool  # val / test are held-out images of the training classes, else classes never trained on
  gallery_is_train: bool  # val / test queries are ranked against the training set (hashing's database)
  needs_query_gallery: bool  # only datasets with official query / gallery splits
  hash_codes: bool  # embeddings are compared as sign codes (Hamming distance)
  selection_metric: str
  metrics: Callable[[ml_collections.ConfigDict], tuple[str, ...]]


PROTOCOLS = {protocol.name: protocol for protocol in (
    Protocol("retrieval", closed_set=False, gallery_is_train=False, needs_query_gallery=False, hash_codes=False,
             selection_metric="recall@1", metrics=lambda e: (
                 *(f"recall@{k}" for k in e.ks), "precision@1", "r_precision", "map@r", "map", "nmi",
                 *map(tpr_name, e.fprs))),
    Protocol("reid", closed_set=False, gallery_is_train=False, needs_query_gallery=True, hash_codes=False,
             selection_metric="map", metrics=lambda e: (
                 "rank1", "rank5", "rank10", "rank20", "map", "minp", *map(tpr_name, e.fprs))),
    Protocol("hashing", closed_set=True, gallery_is_train=True, needs_query_gallery=False, hash_codes=True,
             selection_metric="map", metrics=lambda e: ("map", "map_tie_aware", *((f"map@{e.topk}",) if e.topk else ()))),
    Protocol("classification", closed_set=True, gallery_is_train=False, needs_query_gallery=False,
             hash_codes=False, selection_metric="accuracy", metrics=lambda e: ("accuracy",)),
)}


def get_protocol(config: ml_collections.ConfigDict) -> Protocol:
  """The record of `config.eval.protocol`."""
  if config.eval.protocol not in PROTOCOLS:
    raise InputError(f"config.eval.protocol={config.eval.protocol!r}: expected one of {tuple(PROTOCOLS)}")
  return PROTOCOLS[config.eval.protocol]


def metric_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The metrics the evaluator of `config.eval.protocol` reports for `config.method`: the
  protocol's, and for hashing with a method's learned database codes the same against the
  re-encoded database (`reencoded/map`, ...)."""
  protocol = get_protocol(config)
  names = protocol.metrics(config.eval)
  if protocol.hash_codes and methods.get_method(config.method).database_codes is not None:
    names += tuple(f"{REENCODED}/{name}" for name in names)
  return names


def selection_metric(config: ml_collections.ConfigDict) -> str:
  """The validation metric that picks the best checkpoint."""
  return config.eval.selection_metric or get_protocol(config).selection_metric
