"""jaxret.eval.retrieval_metrics against float64 NumPy references written from the definitions."""
import jax
import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import retrieval

KS = (1, 2, 4, 8, 100)


def reference_metrics(query, query_labels, gallery=None, gallery_labels=None, *, metric, ks=KS):
  """Per query: rank the gallery (query itself left out when gallery is None) by float64 score,
  ties by index; queries whose class has no other gallery item are skipped."""
  self_gallery = gallery is None
  if self_gallery:
    gallery, gallery_labels = query, query_labels
  q = np.asarray(query, np.float64)
  g = np.asarray(gallery, np.float64)
  per_query = {f"recall@{k}": [] for k in ks}
  per_query.update({"precision@1": [], "r_precision": [], "map@r": [], "map": []})
  skipped = 0
  for i in range(len(q)):
    items = [j for j in range(len(g)) if not (self_gallery and j == i)]
    if metric == "cosine":
      score = {j: round(float(q[i] @ g[j] / np.linalg.norm(q[i]) / np.linalg.norm(g[j])), 12) for j in items}
    else:
      score = {j: -float(np.sum((q[i] - g[j]) ** 2)) for j in items}
    ranked = sorted(items, key=lambda j: (-score[j], j))
    rel = [1 if gallery_labels[j] == query_labels[i] else 0 for j in ranked]
    r = sum(rel)
    if r == 0:
      skipped += 1
      continue
    precision = [sum(rel[:n + 1]) / (n + 1) for n in range(len(rel))]
    for k in ks:
      per_query[f"recall@{k}"].append(1.0 if any(rel[:k]) else 0.0)
    per_query["precision@1"].append(float(rel[0]))
    per_query["r_precision"].append(sum(rel[:r]) / r)
    per_query["map@r"].append(sum(precision[n] * rel[n] for n in range(r)) / r)
    per_query["map"].append(sum(precision[n] * rel[n] for n in range(len(rel))) / r)
  out = {name: float(np.mean(v)) for name, v in per_query.items()}
  out["skipped_queries"] = skipped
  return out


def tied_set(rng, metric, n=70, num_classes=12):
  """Embeddings with exact ties (small integers for euclidean, {-1, +1} for cosine), duplicates,
  and classes 100, 101 that have a single member (queries without any match)."""
  if metric == "euclidean":
    x = rng.integers(-2, 3, (n, 4)).astype(np.float32)
  else:
    x = rng.choice([-1.0, 1.0], (n, 6)).astype(np.float32)
  x[10:20] = x[:10]
  labels = rng.integers(0, num_classes, n)
  labels[[3, n - 30]] = [100, 101]
  return x, labels


def assert_metrics_close(got, want):
  assert set(want) <= set(got), (sorted(got), sorted(want))
  for name, value in want.items():
    assert got[name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_self_gallery_matches_reference(metric):
  x, labels = tied_set(np.random.default_rng(0), metric)
  got = jaxret.eval.retrieval_metrics(x, labels, ks=KS, metric=metric, with_nmi=False, query_block=16)
  want = reference_metrics(x, labels, metric=metric)
  assert want["skipped_queries"] == 2
  assert_metrics_close(got, want)


def test_separate_gallery_matches_reference():
  rng = np.random.default_rng(1)
  query, query_labels = tied_set(rng, "euclidean", n=40)
  gallery, gallery_labels = tied_set(rng, "euclidean", n=90)
  gallery[:15] = query[:15]
  query_labels[[3, 7, 9]] = [55, 56, 57]  # classes absent from the gallery
  got = jaxret.eval.retrieval_metrics(query, query_labels, gallery, gallery_labels, ks=KS,
                                      metric="euclidean", with_nmi=False, query_block=8)
  want = reference_metrics(query, query_labels, gallery, gallery_labels, metric="euclidean")
  assert want["skipped_queries"] == 3
  assert_metrics_close(got, want)


def test_random_float_embeddings_match_reference():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(90, 16)).astype(np.float32)
  labels = rng.integers(0, 8, 90)
  got = jaxret.eval.retrieval_metrics(x, labels, ks=KS, with_nmi=False)
  assert_metrics_close(got, reference_metrics(x, labels, metric="cosine"))


def test_top_k_search_agrees_with_full_ranking():
  x, labels = tied_set(np.random.default_rng(3), "cosine")
  full = jaxret.eval.retrieval_metrics(x, labels, ks=KS, with_nmi=False)
  top = jaxret.eval.retrieval_metrics(x, labels, ks=KS, with_nmi=False, full_ranking=False, block_size=16)
  assert set(top) == {f"recall@{k}" for k in KS} | {"precision@1", "skipped_queries"}
  for name, value in top.items():
    assert value == full[name], name


def test_sharded_over_four_devices_equals_one_device_exactly():
  assert jax.device_count() == 4
  rng = np.random.default_rng(4)
  x = rng.normal(size=(77, 12)).astype(np.float32)
  labels = rng.integers(0, 9, 77)
  one = jaxret.eval.data_mesh(jax.devices()[:1])
  a = jaxret.eval.retrieval_metrics(x, labels, with_nmi=False, query_block=8, mesh=one)
  b = jaxret.eval.retrieval_metrics(x, labels, with_nmi=False, query_block=8, mesh=jaxret.eval.data_mesh())
  assert a == b


def reference_nmi(labels, clusters):
  """I(Y; C) / ((H(Y) + H(C)) / 2) from the contingency table."""
  n = len(labels)
  ys, cs = np.unique(labels), np.unique(clusters)
  joint = np.array([[np.sum((labels == y) & (clusters == c)) for c in cs] for y in ys]) / n
  py, pc = joint.sum(1), joint.sum(0)
  nz = joint > 0
  mutual = np.sum(joint[nz] * np.log(joint[nz] / np.outer(py, pc)[nz]))
  entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))
  return mutual / ((entropy(py) + entropy(pc)) / 2)


def test_nmi_is_the_nmi_of_seeded_kmeans_clusters():
  from sklearn.cluster import KMeans
  rng = np.random.default_rng(5)
  labels = rng.integers(0, 5, 200)
  x = rng.normal(size=(200, 8)) + 2.0 * np.eye(8)[labels]
  unit = x / np.linalg.norm(x, axis=1, keepdims=True)
  clusters = KMeans(n_clusters=5, n_init=1, random_state=3).fit_predict(unit)
  got = jaxret.eval.retrieval_metrics(x, labels, seed=3, full_ranking=False)["nmi"]
  assert got == pytest.approx(reference_nmi(labels, clusters), abs=1e-9)
  assert 0.05 < got < 0.95


def test_nmi_of_separated_classes_is_one():
  rng = np.random.default_rng(6)
  labels = np.repeat(np.arange(4), 10)
  x = 10 * np.eye(4)[labels] + 0.01 * rng.normal(size=(40, 4))
  assert retrieval.nmi(x, labels) == pytest.approx(1.0)


def test_errors_name_the_bad_value():
  x = np.zeros((5, 3), np.float32)
  with pytest.raises(ValueError, match=r"query_labels must have shape \[5\].*got shape \(4,\)"):
    jaxret.eval.retrieval_metrics(x, np.zeros(4))
  with pytest.raises(ValueError, match="gallery_emb and gallery_labels must be given together"):
    jaxret.eval.retrieval_metrics(x, np.zeros(5), x)
  with pytest.raises(ValueError, match=r"ks must be positive integers; got \(1, 0\)"):
    jaxret.eval.retrieval_metrics(x, np.zeros(5), ks=(1, 0))
  with pytest.raises(ValueError, match="metric must be 'cosine' or 'euclidean' for retrieval; got 'hamming'"):
    jaxret.eval.retrieval_metrics(x, np.zeros(5), metric="hamming")
