"""The train loop's evaluators: each equals its metric function on embeddings made by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxret.eval
from jaxret.data import splits
from jaxret.eval import evaluator, query_expansion, rerank
from jaxret.eval.verification import FPRS
from jaxret.training import config as config_lib
from jaxret import mesh as mesh_lib, methods, protocols


class _Source:
  """`n` tiny images whose pixels encode a 3-d embedding; labels and cameras chosen by index."""

  def __init__(self, n, seed):
    rng = np.random.default_rng(seed)
    self.embeddings = rng.normal(size=(n, 3)).astype(np.float32)
    self.embeddings[1] = self.embeddings[0]  # a tie
    self.labels = rng.integers(1, 5, n)  # no 0: re-ID's distractor id.astype(np.int32)
    self.cameras = rng.integers(0, 3, n).astype(np.int32)

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, i):
    image = np.broadcast_to(self.embeddings[i], (2, 2, 3))
    return {"image": image, "label": self.labels[i], "camera": self.cameras[i], "index": np.int32(i)}


def _embed_fn(params, method_state, images, config):
  """Undoes the ImageNet normalisation of the pipeline and reads back the embedding, scaled."""
  del method_state, config
  mean = jnp.asarray([0.485, 0.456, 0.406])
  std = jnp.asarray([0.229, 0.224, 0.225])
  return params["scale"] * ((images[:, 0, 0] * std + mean) * 255.0)


def _config(protocol, **eval_overrides):
  config = config_lib.base_config()
  config.eval.protocol = protocol
  config.eval.batch_size = 8
  config.image_size = 2  # the eval transform leaves the 2 x 2 images as they are
  config.eval.update(eval_overrides)
  return config


def _run(config, source, gallery=None):
  embedder = evaluator.Embedder(methods.Method("double", embed_fn=_embed_fn), config, mesh_lib.make_mesh())
  assert jax.device_count() == 4  # the embedding is sharded over 4 fake devices
  return evaluator.make_evaluator(source, gallery, embedder).run({"scale": jnp.float32(0.5)}, {})


def _expected_embeddings(source):
  return 0.5 * source.embeddings


def test_retrieval_evaluator_scores_the_split_against_itself():
  source = _Source(21, seed=0)  # 21 examples: the last batch is padded
  got = _run(_config("retrieval", ks=(1, 2)), source)
  want = jaxret.eval.retrieval_metrics(_expected_embeddings(source), source.labels, ks=(1, 2))
  assert got == pytest.approx(want, rel=1e-6)


def test_retrieval_evaluator_scores_queries_against_a_gallery():
  queries, gallery = _Source(9, seed=4), _Source(19, seed=5)
  got = _run(_config("retrieval", ks=(1, 4)), queries, gallery)
  want = jaxret.eval.retrieval_metrics(_expected_embeddings(queries), queries.labels,
                                       _expected_embeddings(gallery), gallery.labels, ks=(1, 4))
  assert got == pytest.approx(want, rel=1e-6)


def test_reid_evaluator_scores_queries_against_a_gallery():
  queries, gallery = _Source(9, seed=6), _Source(23, seed=7)
  got = _run(_config("reid", fprs=FPRS), queries, gallery)
  want = jaxret.eval.reid_metrics(_expected_embeddings(queries), queries.labels, queries.cameras,
                                  _expected_embeddings(gallery), gallery.labels, gallery.cameras,
                                  metric="cosine", fprs=FPRS)
  assert got == pytest.approx(want, rel=1e-6, nan_ok=True)


def test_reid_evaluator_reranks_and_expands_queries_when_configured():
  queries, gallery = _Source(9, seed=6), _Source(40, seed=7)
  got = _run(_config("reid", rerank=True, rerank_k1=8, rerank_k2=3, query_expansion=True, query_expansion_k=4),
             queries, gallery)
  want = jaxret.eval.reid_metrics(_expected_embeddings(queries), queries.labels, queries.cameras,
                                  _expected_embeddings(gallery), gallery.labels, gallery.cameras, metric="cosine",
                                  rerank=rerank.Settings(k1=8, k2=3), query_expansion=query_expansion.Settings(k=4))
  assert got == pytest.approx(want, rel=1e-6, nan_ok=True)


def test_reid_evaluator_splits_queries_by_identity_and_camera():
  source = _Source(30, seed=1)
  got = _run(_config("reid", metric="euclidean"), source)
  query, gallery = splits.reid_query_gallery(source.labels, source.cameras)
  emb = _expected_embeddings(source)
  want = jaxret.eval.reid_metrics(emb[query], source.labels[query], source.cameras[query],
                                  emb[gallery], source.labels[gallery], source.cameras[gallery])
  assert got == pytest.approx(want, rel=1e-6, nan_ok=True)
  assert set(got) == set(protocols.metric_names(_config("reid"))) | {"skipped_queries"}


def test_hashing_evaluator_ranks_queries_against_the_database_by_code():
  queries, database = _Source(10, seed=2), _Source(27, seed=3)
  got = _run(_config("hashing", topk=5), queries, database)
  codes = [np.where(s.embeddings >= 0, 1, -1) for s in (queries, database)]
  want = jaxret.eval.hashing_metrics(codes[0], queries.labels, codes[1], database.labels, topk=5)
  assert got == pytest.approx(want, rel=1e-6)
  assert {"map", "map_tie_aware", "map@5"} <= set(got)


def test_hashing_without_a_database_is_refused():
  with pytest.raises(ValueError, match="hashing database"):
    _run(_config("hashing"), _Source(4, seed=0))


class _AttributedSource(_Source):
  """`_Source` with 3 binary attributes per example (-1 unknown; attribute 2 never known)."""

  def __init__(self, n, seed):
    super().__init__(n, seed)
    self.attributes = np.random.default_rng(seed + 100).integers(-1, 2, (n, 3)).astype(np.int32)
    self.attributes[:, 2] = -1

  def __getitem__(self, i):
    return {**super().__getitem__(i), "attributes": self.attributes[i]}


def _attribute_fn(params, method_state, images, config):
  """Predicts attribute k = 1 where embedding dimension k is positive."""
  return (_embed_fn(params, method_state, images, config) > 0).astype(jnp.int32)


@pytest.mark.parametrize("protocol", ["retrieval", "reid", "hashing"])
def test_attribute_accuracy_of_the_queries(protocol):
  queries, gallery = _AttributedSource(21, seed=8), _AttributedSource(10, seed=9)
  method = methods.Method("double", embed_fn=_embed_fn, attribute_fn=_attribute_fn)
  embedder = evaluator.Embedder(method, _config(protocol), mesh_lib.make_mesh())
  got = evaluator.make_evaluator(queries, gallery, embedder).run({"scale": jnp.float32(0.5)}, {})
  predicted = (queries.embeddings > 0).astype(np.int32)
  known = queries.attributes >= 0
  per_attribute = [np.mean(predicted[known[:, k], k] == queries.attributes[known[:, k], k]) for k in range(2)]
  want = {"attribute_accuracy": np.mean(per_attribute),
          "attribute_accuracy/0": per_attribute[0], "attribute_accuracy/1": per_attribute[1]}
  assert {k: v for k, v in got.items() if k.startswith("attribute")} == pytest.approx(want, rel=1e-6)
  without = _run(_config(protocol), queries, gallery)  # a method without attribute_fn
  assert not [k for k in without if k.startswith("attribute")]
  assert without == pytest.approx({k: v for k, v in got.items() if not k.startswith("attribute")}, nan_ok=True)


def test_attribute_metrics_use_names_and_skip_unknown_attributes():
  labels = np.array([[0, -1, 2], [1, -1, -1], [1, -1, 2]])
  predicted = np.array([[0, 5, 1], [0, 5, 0], [1, 5, 2]])
  got = evaluator.attribute_metrics(predicted, labels, ("a", "b", "c"))
  assert got == pytest.approx({"attribute_accuracy": (2 / 3 + 1 / 2) / 2, "attribute_accuracy/a": 2 / 3,
                               "attribute_accuracy/c": 1 / 2})
  assert evaluator.attribute_metrics(predicted, np.full((3, 3), -1)) == {}
  with pytest.raises(ValueError, match="one value per attribute"):
    evaluator.attribute_metrics(predicted[:, :2], labels)


def _classify_fn(params, method_state, images, config):
  """Logits of 5 classes: the embedding's 3 dimensions and two constants."""
  embedding = _embed_fn(params, method_state, images, config)
  return jnp.concatenate([embedding, jnp.full((len(images), 2), 0.1)], axis=1)


def test_classification_accuracy_maps_labels_to_the_logits_of_the_training_classes():
  source = _AttributedSource(21, seed=3)  # labels 1..4
  train_classes = (4, 2, 1, 3, 9)  # logit i is class train_classes[i]
  method = methods.Method("double", embed_fn=_embed_fn, classify_fn=_classify_fn, attribute_fn=_attribute_fn)
  embedder = evaluator.Embedder(method, _config("classification"), mesh_lib.make_mesh())
  got = evaluator.make_evaluator(source, None, embedder, train_classes).run({"scale": jnp.float32(0.5)}, {})
  logits = np.concatenate([0.5 * source.embeddings, np.full((21, 2), 0.1)], axis=1)
  predicted_class = np.asarray(train_classes)[np.argmax(logits, axis=1)]
  assert 0 < np.mean(predicted_class == source.labels) < 1
  assert got["accuracy"] == pytest.approx(np.mean(predicted_class == source.labels))
  assert "attribute_accuracy" in got and set(got) - {"accuracy"} == {k for k in got if k.startswith("attribute")}
  assert protocols.metric_names(_config("classification")) == ("accuracy",)

  with pytest.raises(ValueError, match="classes \\[1\\] that training never saw"):
    evaluator.make_evaluator(source, None, embedder, (4, 2, 3)).run({"scale": jnp.float32(0.5)}, {})
  without = evaluator.Embedder(methods.Method("double", embed_fn=_embed_fn), _config("classification"),
                               mesh_lib.make_mesh())
  with pytest.raises(ValueError, match="needs a method with classify_fn"):
    evaluator.make_evaluator(source, None, without, train_classes)


def test_every_protocol_has_an_evaluator_reporting_the_protocols_metric_names():
  assert set(evaluator.EVALUATORS) == set(protocols.PROTOCOLS)
  config = _config("retrieval", ks=(1, 2))
  assert set(_run(config, _Source(21, seed=0))) == set(protocols.metric_names(config)) | {"skipped_queries"}
