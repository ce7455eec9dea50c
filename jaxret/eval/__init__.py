"""Evaluation with the exact protocols of each field, computed in chunks on sharded devices.

- `retrieval_metrics`: metric learning (Recall@K, precision@1, R-precision, MAP@R, mAP, NMI).
- `reid_metrics`: person re-ID, Market-1501 protocol (CMC rank-1/5/10/20, mAP, mINP), optionally
  after k-reciprocal re-ranking (`rerank`, `reranked_distances`) or average query expansion
  (`query_expansion`).
- `hashing_metrics`: Hamming ranking (mAP, tie-aware mAP, mAP@K); `precision_recall_curve`.
- `nearest_neighbours`: exact k nearest neighbours, the building block.
- `data_mesh`: the 1-D "data" mesh the functions shard queries over (default: all devices).

Rankings break ties by gallery index, smaller index first, everywhere.
"""
from jaxret.eval.hashing import hashing_metrics, precision_recall_curve, tie_aware_ap
from jaxret.eval.knn import Neighbours, nearest_neighbours
from jaxret.eval.query_sharding import data_mesh
from jaxret.eval.reid import reid_metrics
from jaxret.eval.rerank import reranked_distances
from jaxret.eval.retrieval import nmi, retrieval_metrics

__all__ = [
    "Neighbours",
    "data_mesh",
    "hashing_metrics",
    "nearest_neighbours",
    "nmi",
    "precision_recall_curve",
    "reid_metrics",
    "reranked_distances",
    "retrieval_metrics",
    "tie_aware_ap",
]
