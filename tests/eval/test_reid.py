"""jaxret.eval.reid_metrics against a float64 NumPy reference of the Market-1501 protocol."""
import jax
import numpy as np
import pytest

import jaxret.eval


def reference_reid(query, query_ids, query_cams, gallery, gallery_ids, gallery_cams, metric="euclidean",
                   distances=None):
  """Per query: drop junk (-1) and same identity + same camera, rank the rest by float64
  distance (or the given `distances` `[Q, G]`; ties by index), then CMC, AP = mean precision at
  the matches, INP = R / last match rank."""
  q = np.asarray(query, np.float64)
  g = np.asarray(gallery, np.float64)
  cmc = {k: [] for k in (1, 5, 10, 20)}
  aps, inps, skipped = [], [], 0
  for i in range(len(q)):
    kept = [j for j in range(len(g))
            if gallery_ids[j] != -1 and not (gallery_ids[j] == query_ids[i] and gallery_cams[j] == query_cams[i])]
    if distances is not None:
      distance = {j: float(distances[i][j]) for j in kept}
    elif metric == "euclidean":
      distance = {j: float(np.sqrt(np.sum((q[i] - g[j]) ** 2))) for j in kept}
    else:
      distance = {j: -round(float(q[i] @ g[j] / np.linalg.norm(q[i]) / np.linalg.norm(g[j])), 12) for j in kept}
    ranked = sorted(kept, key=lambda j: (distance[j], j))
    match = [gallery_ids[j] == query_ids[i] for j in ranked]
    if not any(match):
      skipped += 1
      continue
    positions = [n + 1 for n, m in enumerate(match) if m]
    for k in cmc:
      cmc[k].append(1.0 if positions[0] <= k else 0.0)
    aps.append(np.mean([(n + 1) / p for n, p in enumerate(positions)]))
    inps.append(len(positions) / positions[-1])
  out = {f"rank{k}": float(np.mean(v)) for k, v in cmc.items()}
  out.update(map=float(np.mean(aps)), minp=float(np.mean(inps)), skipped_queries=skipped)
  return out


def market_like(rng, metric="euclidean", num_query=40, num_gallery=150):
  """Small integer embeddings (exact distance ties, duplicate images), identities 1..15 in the
  queries, gallery with junk (-1) and distractors (0), 3 cameras; query identities 13, 14 only
  appear in the gallery under the query's own camera (no valid match)."""
  dim = 4 if metric == "euclidean" else 6
  draw = (lambda n: rng.integers(-2, 3, (n, dim))) if metric == "euclidean" else \
      (lambda n: rng.choice([-1, 1], (n, dim)))
  query = draw(num_query).astype(np.float32)
  gallery = draw(num_gallery).astype(np.float32)
  gallery[:12] = query[:12]
  query_ids = rng.integers(1, 13, num_query)
  query_cams = rng.integers(0, 3, num_query)
  gallery_ids = rng.integers(-1, 13, num_gallery)
  gallery_cams = rng.integers(0, 3, num_gallery)
  query_ids[[30, 31]] = [13, 14]
  gallery_ids[[100, 101, 102]] = [13, 13, 14]
  gallery_cams[[100, 101, 102]] = query_cams[[30, 30, 31]]
  gallery_ids[:12] = np.where(np.arange(12) % 2 == 0, query_ids[:12], 0)  # duplicates: matches and distractors
  gallery_cams[:12] = (query_cams[:12] + 1) % 3
  return query, query_ids, query_cams, gallery, gallery_ids, gallery_cams


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_matches_reference(metric):
  data = market_like(np.random.default_rng(0), metric)
  got = jaxret.eval.reid_metrics(*data, metric=metric, query_block=8)
  want = reference_reid(*data, metric=metric)
  assert set(got) == set(want)
  assert want["skipped_queries"] == 2
  assert got["skipped_queries"] == want["skipped_queries"]
  for name, value in want.items():
    assert got[name] == pytest.approx(value, abs=1e-6), name


def test_random_floats_match_reference():
  rng = np.random.default_rng(1)
  _, query_ids, query_cams, _, gallery_ids, gallery_cams = market_like(rng)
  query = rng.normal(size=(len(query_ids), 32))
  gallery = rng.normal(size=(len(gallery_ids), 32))
  data = (query, query_ids, query_cams, gallery, gallery_ids, gallery_cams)
  got = jaxret.eval.reid_metrics(*data)
  for name, value in reference_reid(*data).items():
    assert got[name] == pytest.approx(value, abs=1e-6), name


def test_junk_and_same_camera_items_never_count():
  """One query; a same-camera copy of it and a junk copy rank first but must be ignored."""
  query = np.zeros((1, 2), np.float32)
  gallery = np.array([[0, 0], [0, 0], [3, 0], [1, 0], [2, 0]], np.float32)
  gallery_ids = np.array([7, -1, 7, 0, 7])
  gallery_cams = np.array([1, 2, 2, 2, 0])
  got = jaxret.eval.reid_metrics(query, [7], [1], gallery, gallery_ids, gallery_cams)
  # Remaining ranking: distractor (d=1), match (d=2), match (d=3).
  assert got["rank1"] == 0.0 and got["rank5"] == 1.0
  assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
  assert got["minp"] == pytest.approx(2 / 3)


def test_sharded_over_four_devices_equals_one_device_exactly():
  assert jax.device_count() == 4
  rng = np.random.default_rng(2)
  _, query_ids, query_cams, _, gallery_ids, gallery_cams = market_like(rng)
  data = (rng.normal(size=(len(query_ids), 16)), query_ids, query_cams,
          rng.normal(size=(len(gallery_ids), 16)), gallery_ids, gallery_cams)
  a = jaxret.eval.reid_metrics(*data, query_block=8, mesh=jaxret.eval.data_mesh(jax.devices()[:1]))
  b = jaxret.eval.reid_metrics(*data, query_block=8, mesh=jaxret.eval.data_mesh())
  assert a == b


def test_all_queries_without_match_give_nan_and_count():
  got = jaxret.eval.reid_metrics(np.zeros((2, 2)), [1, 2], [0, 0], np.ones((3, 2)), [1, 2, -1], [0, 0, 1])
  assert got["skipped_queries"] == 2
  assert all(np.isnan(got[k]) for k in ("rank1", "map", "minp"))


def test_errors_name_the_bad_value():
  x = np.zeros((3, 2))
  with pytest.raises(ValueError, match="query_ids must not be -1"):
    jaxret.eval.reid_metrics(x, [1, -1, 2], [0, 0, 0], x, [1, 2, 3], [0, 0, 0])
  with pytest.raises(ValueError, match=r"gallery_cams must have shape \[3\]"):
    jaxret.eval.reid_metrics(x, [1, 1, 2], [0, 0, 0], x, [1, 2, 3], [0, 0])
  with pytest.raises(ValueError, match="metric must be 'euclidean' or 'cosine' for re-ID; got 'hamming'"):
    jaxret.eval.reid_metrics(x, [1, 1, 2], [0, 0, 0], x, [1, 2, 3], [0, 0, 0], metric="hamming")
  with pytest.raises(ValueError, match="the gallery is empty"):
    jaxret.eval.reid_metrics(x, [1, 1, 2], [0, 0, 0], np.zeros((0, 2)), [], [])
