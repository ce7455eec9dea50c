"""jaxret.eval hashing metrics against NumPy references written from the definitions."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxret.eval
from jaxret.eval import evaluator, hashing
from jaxret import mesh as mesh_lib, methods, protocols
from jaxret.training import config as config_lib


def relevance(query_label, db_labels):
  """Same class id, or (multi-hot) at least one shared label."""
  if np.ndim(query_label) == 0:
    return np.array([label == query_label for label in db_labels])
  return np.array([bool(np.any((row > 0) & (query_label > 0))) for row in db_labels])


def ap_of(rel, cut=None):
  """(1/#relevant counted) * sum_{i <= cut} P(i) rel(i); divisor = R (cut None) or R_cut."""
  rel = list(rel[:cut] if cut else rel)
  hits = [sum(rel[:i + 1]) for i in range(len(rel))]
  total = sum(rel)
  return sum(hits[i] / (i + 1) for i in range(len(rel)) if rel[i]) / total if total else 0.0


def expected_ap_over_tie_orders(distance, rel):
  """Tie-aware AP by enumeration: within each group of equal distance every placement of its
  relevant items is equally likely; AP is a sum over groups, so average each group's part."""
  total = int(rel.sum())
  ap, before_n, before_r = 0.0, 0, 0
  for d in sorted(set(distance)):
    n, r = int(np.sum(distance == d)), int(np.sum(rel[distance == d]))
    if r:
      parts = []
      for positions in itertools.combinations(range(1, n + 1), r):
        parts.append(sum((before_r + m + 1) / (before_n + p) for m, p in enumerate(positions)))
      ap += np.mean(parts)
    before_n += n
    before_r += r
  return ap / total


def reference_hashing(query_codes, query_labels, db_codes, db_labels, topk=None, empty_queries="skip"):
  """Per query: Hamming distances, stable sort (ties by database index), AP, AP@K, tie-aware AP;
  queries without relevant items skipped, or (empty_queries="zero") AP 0 in every mean."""
  maps, maps_k, tie_aware, skipped = [], [], [], 0
  for i in range(len(query_codes)):
    distance = np.array([np.sum(query_codes[i] != code) for code in db_codes])
    rel = relevance(query_labels[i], db_labels)
    if not rel.any():
      skipped += 1
      if empty_queries == "zero":
        maps.append(0.0), maps_k.append(0.0), tie_aware.append(0.0)
      continue
    order = sorted(range(len(db_codes)), key=lambda j: (distance[j], j))
    ranked = rel[order]
    maps.append(ap_of(ranked))
    if topk:
      maps_k.append(ap_of(ranked, topk))
    tie_aware.append(expected_ap_over_tie_orders(distance, rel))
  out = {"map": np.mean(maps), "map_tie_aware": np.mean(tie_aware), "skipped_queries": skipped}
  if topk:
    out[f"map@{topk}"] = np.mean(maps_k)
  return out


def coded_set(rng, num_query=25, num_db=40, bits=6, num_classes=4):
  """{-1, +1} codes (few bits: many ties) and class ids; a query class absent from the database."""
  query_codes = rng.choice([-1, 1], (num_query, bits))
  db_codes = rng.choice([-1, 1], (num_db, bits))
  db_codes[:5] = query_codes[:5]
  query_labels = rng.integers(0, num_classes, num_query)
  db_labels = rng.integers(0, num_classes, num_db)
  query_labels[3] = num_classes + 7
  return query_codes, query_labels, db_codes, db_labels


def assert_close(got, want):
  assert set(got) == set(want)
  for name, value in want.items():
    assert got[name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize("topk", [1, 7])
def test_matches_reference_with_ties(topk):
  data = coded_set(np.random.default_rng(0))
  got = jaxret.eval.hashing_metrics(*data, topk=topk, query_block=8)
  want = reference_hashing(*data, topk=topk)
  assert want["skipped_queries"] == 1
  assert want["map"] != pytest.approx(want["map_tie_aware"], abs=1e-3)  # ties matter in this data
  assert_close(got, want)


def test_empty_queries_skipped_or_counted_as_zero_as_adsh_and_deephash():
  data = coded_set(np.random.default_rng(0))  # query 3's class is not in the database
  skipped = jaxret.eval.hashing_metrics(*data, topk=7)
  zero = jaxret.eval.hashing_metrics(*data, topk=7, empty_queries="zero")
  assert_close(skipped, reference_hashing(*data, topk=7))  # the default
  assert_close(zero, reference_hashing(*data, topk=7, empty_queries="zero"))
  for name in ("map", "map_tie_aware", "map@7"):  # 24 of 25 queries have relevant items
    assert zero[name] == pytest.approx(skipped[name] * 24 / 25, abs=1e-9)
  with pytest.raises(ValueError, match="empty_queries='none'"):
    jaxret.eval.hashing_metrics(*data, empty_queries="none")
  config = config_lib.base_config()
  config.init_weights = "none"  # base_config starts from ImageNet weights
  config.eval.protocol, config.eval.hashing_empty_queries = "hashing", "none"
  with pytest.raises(ValueError, match="config.eval.hashing_empty_queries='none'"):
    config_lib.validate(config)


def test_multi_hot_labels():
  rng = np.random.default_rng(1)
  query_codes, _, db_codes, _ = coded_set(rng)
  query_labels = (rng.random((len(query_codes), 5)) < 0.25).astype(np.int32)
  db_labels = (rng.random((len(db_codes), 5)) < 0.25).astype(np.int32)
  query_labels[0] = 0  # no label at all: no relevant item
  data = (query_codes, query_labels, db_codes, db_labels)
  got = jaxret.eval.hashing_metrics(*data, topk=10)
  want = reference_hashing(*data, topk=10)
  assert want["skipped_queries"] >= 1
  assert_close(got, want)


def test_tie_aware_map_does_not_depend_on_database_order():
  query_codes, query_labels, db_codes, db_labels = coded_set(np.random.default_rng(2), bits=4)
  order = np.random.default_rng(3).permutation(len(db_codes))
  a = jaxret.eval.hashing_metrics(query_codes, query_labels, db_codes, db_labels)
  b = jaxret.eval.hashing_metrics(query_codes, query_labels, db_codes[order], db_labels[order])
  assert a["map_tie_aware"] == pytest.approx(b["map_tie_aware"], abs=1e-12)
  assert a["map"] != pytest.approx(b["map"], abs=1e-3)


def test_tie_aware_ap_closed_form_on_hand_cases():
  # One group of 2 items, 1 relevant: orders give AP 1 and 1/2.
  np.testing.assert_allclose(hashing.tie_aware_ap([[2]], [[1]]), [0.75])
  # Groups (n, r) = (1, 0), (3, 2): enumeration over the 3 placements.
  want = np.mean([(1 / 2 + 2 / 3), (1 / 2 + 2 / 4), (1 / 3 + 2 / 4)]) / 2
  np.testing.assert_allclose(hashing.tie_aware_ap([[1, 3]], [[0, 2]]), [want])
  assert np.isnan(hashing.tie_aware_ap([[4]], [[0]])[0])


def test_tie_aware_ap_large_groups_against_enumeration():
  rng = np.random.default_rng(4)
  distance = rng.integers(0, 3, 30)
  rel = rng.random(30) < 0.4
  items = np.array([[np.sum(distance == d) for d in range(3)]])
  relevant = np.array([[np.sum(rel[distance == d]) for d in range(3)]])
  np.testing.assert_allclose(hashing.tie_aware_ap(items, relevant),
                             [expected_ap_over_tie_orders(distance, rel)], rtol=1e-12)


def test_packed_codes_equal_sign_codes():
  query_codes, query_labels, db_codes, db_labels = coded_set(np.random.default_rng(5), bits=11)
  a = jaxret.eval.hashing_metrics(query_codes, query_labels, db_codes, db_labels, topk=5)
  b = jaxret.eval.hashing_metrics(np.packbits(query_codes > 0, axis=1), query_labels,
                                  np.packbits(db_codes > 0, axis=1), db_labels, topk=5)
  assert a == b


def test_precision_recall_by_radius():
  data = coded_set(np.random.default_rng(6))
  query_codes, query_labels, db_codes, db_labels = data
  bits = query_codes.shape[1]
  precision = {r: [] for r in range(bits + 1)}
  recall = {r: [] for r in range(bits + 1)}
  for i in range(len(query_codes)):
    distance = np.array([np.sum(query_codes[i] != code) for code in db_codes])
    rel = relevance(query_labels[i], db_labels)
    if not rel.any():
      continue
    for r in range(bits + 1):
      retrieved = distance <= r
      recall[r].append(np.sum(rel & retrieved) / np.sum(rel))
      if retrieved.any():
        precision[r].append(np.sum(rel & retrieved) / np.sum(retrieved))
  got = jaxret.eval.precision_recall_curve(*data)
  np.testing.assert_array_equal(got["radius"], np.arange(bits + 1))
  np.testing.assert_allclose(got["recall"], [np.mean(recall[r]) for r in range(bits + 1)], atol=1e-12)
  np.testing.assert_allclose(got["precision"], [np.mean(precision[r]) for r in range(bits + 1)], atol=1e-12)


def test_sharded_over_four_devices_equals_one_device_exactly():
  assert jax.device_count() == 4
  data = coded_set(np.random.default_rng(7), num_query=37, num_db=90, bits=12)
  a = jaxret.eval.hashing_metrics(*data, topk=20, query_block=8, mesh=jaxret.eval.data_mesh(jax.devices()[:1]))
  b = jaxret.eval.hashing_metrics(*data, topk=20, query_block=8, mesh=jaxret.eval.data_mesh())
  assert a == b


def test_errors_name_the_bad_value():
  codes = np.ones((3, 4))
  with pytest.raises(ValueError, match=r"query_codes must hold codes in \{-1, \+1\}.*found values \[0"):
    jaxret.eval.hashing_metrics(np.zeros((3, 4)), [0, 1, 2], codes, [0, 1, 2])
  with pytest.raises(ValueError, match="db_codes must have 4 bits to match the query codes; got 5"):
    jaxret.eval.hashing_metrics(codes, [0, 1, 2], np.ones((3, 5)), [0, 1, 2])
  with pytest.raises(ValueError, match="must both be class ids or both multi-hot"):
    jaxret.eval.hashing_metrics(codes, [0, 1, 2], codes, np.eye(3, dtype=int))
  with pytest.raises(ValueError, match="topk must be a positive integer"):
    jaxret.eval.hashing_metrics(codes, [0, 1, 2], codes, [0, 1, 2], topk=0)


class _CodedImages:
  """`n` 2 x 2 images whose pixels carry a 3-bit embedding (a random sign pattern); labels 1..3."""

  def __init__(self, n, seed):
    rng = np.random.default_rng(seed)
    self.embeddings = rng.choice([-1.0, 1.0], (n, 3)).astype(np.float32)
    self.labels = rng.integers(1, 4, n)

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, i):
    return {"image": np.broadcast_to(self.embeddings[i], (2, 2, 3)), "label": self.labels[i], "index": np.int32(i)}


def _hashing_run(database_codes, method_state, **eval_overrides):
  """The hashing evaluator on 12 queries against a database of 20, with a method that embeds each
  image as its pixel (the pipeline's normalisation undone up to a scale) and has `database_codes`."""
  config = config_lib.base_config()
  config.method = "a2net"  # a method with database codes: metric_names lists the re-encoded ones
  config.eval.protocol, config.eval.batch_size, config.image_size = "hashing", 8, 2
  config.eval.update(eval_overrides)
  embed_fn = lambda params, state, images, config: (
      images[:, 0, 0] * jnp.asarray([0.229, 0.224, 0.225]) + jnp.asarray([0.485, 0.456, 0.406]))
  method = methods.Method("double", embed_fn=embed_fn, database_codes=database_codes)
  queries, database = _CodedImages(12, seed=5), _CodedImages(20, seed=6)
  queries.labels[0] = 9  # no relevant database item
  embedder = evaluator.Embedder(method, config, mesh_lib.make_mesh())
  got = evaluator.make_evaluator(queries, database, embedder).run({}, method_state)
  return config, queries, database, got


def test_hashing_protocol_ranks_queries_against_the_learned_database_codes():
  z = np.random.default_rng(7).choice([-1.0, 1.0], (20, 3)).astype(np.float32)
  config, queries, database, got = _hashing_run(lambda params, state, config: state["z"], {"z": z}, topk=5)
  learned = jaxret.eval.hashing_metrics(queries.embeddings, queries.labels, z, database.labels, topk=5)
  reencoded = jaxret.eval.hashing_metrics(queries.embeddings, queries.labels, database.embeddings, database.labels,
                                          topk=5)
  assert learned["map"] != pytest.approx(reencoded["map"], abs=1e-3)
  for name in ("map", "map_tie_aware", "map@5"):  # ADSH / SEMICON: rB = V (Z); re-encoded beside it
    assert got[name] == pytest.approx(learned[name], abs=1e-9), name
    assert got[f"reencoded/{name}"] == pytest.approx(reencoded[name], abs=1e-9), name
  assert set(got) == set(protocols.metric_names(config)) | {"skipped_queries"}
  _, _, _, zero = _hashing_run(lambda params, state, config: state["z"], {"z": z}, hashing_empty_queries="zero")
  assert zero["map"] == pytest.approx(
      jaxret.eval.hashing_metrics(queries.embeddings, queries.labels, z, database.labels, empty_queries="zero")["map"])
  with pytest.raises(ValueError, match="expected the database to be the training set"):
    _hashing_run(lambda params, state, config: state["z"][:19], {"z": z})
