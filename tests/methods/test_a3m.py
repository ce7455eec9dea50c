"""A3M: the attention equations against numpy, the ablation switches, the loss of Eq. 11 with
unknown attributes masked, gradients into every branch, and a short training run.

Compiling is the cost here: one tiny model (64 px, so res5 has L = 4 regions) is initialised
once per module, its forward passes run eagerly (cached per-op programs), and one gradient
program is compiled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import a3m as a3m_config
from jaxret.data import datasets, pipeline
from jaxret.methods import a3m
from jaxret.training import loop
from tests.methods.conftest import train_tiny

SIZES = (3, 2, 4)  # K = 3 attributes with 3, 2 and 4 values
NUM_CLASSES = 5


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _config(**a3m_overrides):
  config = a3m_config.get_config()
  config.unlock()
  config.backbone_width = 0.0625
  config.image_size = 64
  config.num_classes = NUM_CLASSES
  config.attribute_sizes = SIZES
  config.embedding_dim = 16
  config.a3m.feature_dim = 8
  config.a3m.update(a3m_overrides)
  config.lock()
  return config


def _batch(attributes=None):
  rng = np.random.default_rng(0)
  if attributes is None:
    attributes = [[0, 1, 3], [2, -1, 0], [1, 0, -1], [-1, -1, 2]]
  return {"image": jnp.asarray(rng.normal(size=(4, 64, 64, 3)), jnp.float32),
          "label": jnp.asarray([0, 1, 2, 4], jnp.int32),
          "attributes": jnp.asarray(attributes, jnp.int32)}


def _init(config):
  return jax.jit(lambda: a3m.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()


@pytest.fixture(scope="module")
def model():
  config = _config()
  params, state = _init(config)
  return config, params, state


def _apply(config, params, state, train=False, **a3m_overrides):
  if a3m_overrides:
    config = _config(**{**config.a3m.to_dict(), **a3m_overrides})
  variables = {"params": params, **state}
  if train:
    return a3m.make_model(config).apply(variables, _batch()["image"], train=True, mutable=["batch_stats"])[0]
  return a3m.make_model(config).apply(variables, _batch()["image"], train=False)


# V: L = 3 regions of d = 2; A: K = 2 attributes; v_cat the regions' mean.
V = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
A = np.array([[[1.0, -1.0], [0.5, 2.0]]])
V_CAT = V.mean(axis=1)


def test_attention_equations_on_a_hand_computed_example():
  # Eq. 5: m_k[l] = sigmoid(v_l . a_k); a_1 scores the regions 1, -1, 0 and a_2 0.5, 2, 2.5.
  m = np.asarray(a3m.attribute_guided_attention(a3m.region_scores(jnp.asarray(V), jnp.asarray(A))))
  np.testing.assert_allclose(m, _sigmoid(np.array([[[1.0, -1.0, 0.0], [0.5, 2.0, 2.5]]])), rtol=1e-6)
  m_region = np.asarray(a3m.merge_region_attention(jnp.asarray(m)))
  np.testing.assert_allclose(m_region, _sigmoid(np.array([[1.0, 2.0, 2.5]])), rtol=1e-6)
  # Eq. 6: (1/L) sum_l m_region[l] v_l.
  f_region = np.asarray(a3m.region_feature(jnp.asarray(V), jnp.asarray(m_region)))
  want = (m_region[0, 0] * V[0, 0] + m_region[0, 1] * V[0, 1] + m_region[0, 2] * V[0, 2]) / 3
  np.testing.assert_allclose(f_region[0], want, rtol=1e-6)
  # Eq. 7: s_k = sigmoid(a_k . v_cat), v_cat = (2/3, 2/3): scores 0 and 5/3.
  s = np.asarray(a3m.category_guided_attention(a3m.attribute_scores(jnp.asarray(A), jnp.asarray(V_CAT))))
  np.testing.assert_allclose(s, [[0.5, _sigmoid(5.0 / 3.0)]], rtol=1e-6)
  # Eq. 8: (1/K) sum_k s_k a_k.
  f_attr = np.asarray(a3m.attribute_feature(jnp.asarray(A), jnp.asarray(s)))
  np.testing.assert_allclose(f_attr[0], (0.5 * A[0, 0] + _sigmoid(5.0 / 3.0) * A[0, 1]) / 2, rtol=1e-6)
  # Equal weights (EQUAL_WEIGHT = 1): average pooling of the regions, the mean attribute.
  ones = jnp.ones((1, 3))
  np.testing.assert_allclose(a3m.region_feature(jnp.asarray(V), a3m.EQUAL_WEIGHT * ones), V_CAT, rtol=1e-6)
  np.testing.assert_allclose(a3m.attribute_feature(jnp.asarray(A), jnp.ones((1, 2))), A.mean(axis=1), rtol=1e-6)


def test_attribute_cross_entropy_leaves_unknown_values_out():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(3, 2, 4)).astype(np.float32)
  mask = np.asarray(a3m.value_mask((4, 2)))
  np.testing.assert_array_equal(mask, [[True] * 4, [True, True, False, False]])
  masked = np.where(mask[None], logits, -1e9)
  labels = np.array([[3, -1], [-1, -1], [0, 1]])
  got = np.asarray(a3m.attribute_cross_entropy(jnp.asarray(masked), jnp.asarray(labels)))

  def ce(row, label):
    row = row[: len(row) if label < 0 else None]
    return np.log(np.sum(np.exp(row))) - row[label]

  want0 = (ce(logits[0, 0], 3) + ce(logits[2, 0], 0)) / 2  # attribute 0 known in examples 0 and 2
  want1 = np.log(np.sum(np.exp(logits[2, 1, :2]))) - logits[2, 1, 1]  # only 2 values, known in example 2
  np.testing.assert_allclose(got, [want0, want1], rtol=1e-5)
  none_known = a3m.attribute_cross_entropy(jnp.asarray(masked), jnp.full((3, 2), -1))
  np.testing.assert_array_equal(none_known, [0.0, 0.0])


def test_outputs_and_attribute_predictions(model):
  config, params, state = model
  out = _apply(config, params, state)
  shapes = {k: v.shape for k, v in out.items()}
  assert shapes == {"embedding": (4, 16), "logits": (4, NUM_CLASSES), "category_logits": (4, NUM_CLASSES),
                    "attribute_logits": (4, 3, 4), "attention": (4, 3, 2, 2), "region_attention": (4, 2, 2),
                    "attribute_weights": (4, 3), "features": (4, 8)}
  assert np.all(np.asarray(out["attribute_logits"])[:, 1, 2:] == -1e9)  # attribute 1 has 2 values
  predicted = np.asarray(a3m.attribute_fn(params, state, _batch()["image"], config))
  np.testing.assert_array_equal(predicted, np.argmax(out["attribute_logits"], -1))
  assert predicted.dtype == np.int32 and np.all(predicted < np.asarray(SIZES))
  np.testing.assert_allclose(a3m.embed_fn(params, state, _batch()["image"], config), out["embedding"])
  np.testing.assert_allclose(a3m.classify_fn(params, state, _batch()["image"], config), out["logits"])
  # m_region = max_k m_k (Eq. 5 and below), in the model as in the equation.
  np.testing.assert_allclose(out["region_attention"], np.max(out["attention"], axis=1), rtol=1e-6)


def test_each_ablation_replaces_exactly_its_weights(model):
  config, params, state = model
  full = _apply(config, params, state, train=True)  # batch statistics: scores of moderate size
  assert not np.allclose(full["attribute_weights"], 1.0) and not np.allclose(full["region_attention"], 1.0)
  expected = {  # variant: (region weights equal, attribute weights equal)
      "att1": (False, True), "att2": (True, False), "baseline2": (True, True)}
  for variant, (region_equal, attribute_equal) in expected.items():
    out = _apply(config, params, state, train=True, variant=variant)
    np.testing.assert_allclose(out["attention"], full["attention"], rtol=1e-6)  # Eq. 5 maps are kept
    for name, equal in (("region_attention", region_equal), ("attribute_weights", attribute_equal)):
      want = np.full_like(full[name], a3m.EQUAL_WEIGHT) if equal else full[name]
      np.testing.assert_allclose(out[name], want, rtol=1e-6, err_msg=f"{variant}: {name}")
    np.testing.assert_allclose(out["category_logits"], full["category_logits"], rtol=1e-6)
    np.testing.assert_allclose(out["attribute_logits"], full["attribute_logits"], rtol=1e-6)
    assert not np.allclose(out["features"], full["features"])


def test_batchnorm_attention_normalises_the_scores_over_the_batch(model):
  config, params, state = model
  params = dict(params)  # the BatchNorm layers start at scale 1, bias 0
  for name, shape in (("region_attention_norm", (4,)), ("attribute_attention_norm", (3,))):
    params[name] = {"scale": jnp.ones(shape), "bias": jnp.zeros(shape)}
  out = _apply(config, params, state, train=True, attention_norm="batchnorm")
  for name, axis in (("region_attention", 0), ("attribute_weights", 0)):
    logits = np.log(out[name]) - np.log1p(-np.asarray(out[name]))  # the BatchNorm outputs
    np.testing.assert_allclose(logits.mean(axis=axis), 0.0, atol=1e-4)
    np.testing.assert_allclose(logits.var(axis=axis), 1.0, atol=1e-3)


def test_loss_is_eq_11_with_unknown_attributes_masked(model):
  config, params, state = model
  batch = _batch()
  out = _apply(config, params, state, train=True)
  loss, (metrics, _) = a3m.loss_fn(params, state, batch, None, config)

  def ce(logits, label):
    logits = np.asarray(logits, np.float64)
    return np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[label]

  labels, attributes = np.asarray(batch["label"]), np.asarray(batch["attributes"])
  loss_add = np.mean([ce(out["logits"][i], labels[i]) for i in range(4)])
  loss_category = np.mean([ce(out["category_logits"][i], labels[i]) for i in range(4)])
  per_attribute = [np.mean([ce(out["attribute_logits"][i, k, :SIZES[k]], attributes[i, k])
                            for i in range(4) if attributes[i, k] >= 0]) for k in range(3)]
  want = loss_add + 0.5 * loss_category + 0.5 * np.mean(per_attribute)
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(metrics["loss_attribute"], np.mean(per_attribute), rtol=1e-5)


def test_attribute_loss_averages_over_the_attributes_known_in_the_batch(model):
  """Eq. 11's (1/K) sum_k L^(k) over the attributes some example knows: attribute 1 unknown to all
  four examples leaves K' = 2 terms, not 3."""
  config, params, state = model
  attributes = [[0, -1, 3], [2, -1, 0], [1, -1, -1], [-1, -1, 2]]
  out = _apply(config, params, state, train=True)
  _, (metrics, _) = a3m.loss_fn(params, state, _batch(attributes), None, config)
  per_attribute = np.asarray(a3m.attribute_cross_entropy(jnp.asarray(out["attribute_logits"]),
                                                         jnp.asarray(attributes)))
  assert per_attribute[1] == 0.0
  np.testing.assert_allclose(metrics["loss_attribute"], (per_attribute[0] + per_attribute[2]) / 2, rtol=1e-5)
  none_known = a3m.mean_attribute_loss(jnp.zeros(3), jnp.full((4, 3), -1))
  assert float(none_known) == 0.0


def test_without_attribute_labels_the_loss_ignores_attributes():
  config = _config(use_attribute_labels=False, num_latent_attributes=2)
  params, state = _init(config)
  assert "attribute_classifiers" not in params and params["attribute_branches"]["kernel"].shape[0] == 2
  batch = _batch()
  loss, (metrics, _) = a3m.loss_fn(params, state, batch, None, config)
  other = dict(batch, attributes=jnp.zeros_like(batch["attributes"]))
  np.testing.assert_array_equal(a3m.loss_fn(params, state, other, None, config)[0], loss)
  no_attributes = {k: v for k, v in batch.items() if k != "attributes"}
  np.testing.assert_array_equal(a3m.loss_fn(params, state, no_attributes, None, config)[0], loss)
  np.testing.assert_allclose(loss, metrics["loss_add"] + 0.5 * metrics["loss_category"], rtol=1e-6)
  assert a3m.METHOD.attribute_fn_for(config) is None
  assert "attribute_logits" not in _apply(config, params, state)


def test_gradients_reach_every_branch(model):
  config, params, state = model
  grads = jax.jit(lambda p: jax.grad(lambda p: a3m.loss_fn(p, state, _batch(), None, config)[0])(p))(params)
  grads = jax.tree.map(np.asarray, grads)
  for name in ("category_conv", "category_classifier", "embedding", "classifier"):
    for leaf in jax.tree.leaves(grads[name]):
      assert np.any(leaf != 0), name
  branch = grads["attribute_branches"]
  assert np.all(np.abs(branch["kernel"]).sum(axis=(1, 2)) > 0) and np.all(np.abs(branch["bias"]).sum(axis=1) > 0)
  fc = grads["attribute_classifiers"]["kernel"]  # [K, d, max_values]
  for k, size in enumerate(SIZES):
    assert np.all(np.abs(fc[k, :, :size]).sum(axis=0) > 0), f"attribute {k}"
    assert np.all(fc[k, :, size:] == 0), f"padded values of attribute {k}"
  backbone = jax.tree_util.tree_flatten_with_path(grads["backbone"])[0]
  zero = [jax.tree_util.keystr(path) for path, leaf in backbone if not np.any(leaf != 0)]
  assert not zero, zero


def test_configs_build_for_every_dataset():
  market = a3m_config.get_config("dataset=market1501")
  assert (market.image_height, market.image_size, market.eval.protocol, market.eval.metric) == (448, 224, "reid",
                                                                                               "euclidean")
  assert market.a3m.feature_dim == 512 and market.embedding_dim == 0 and market.a3m.use_attribute_labels
  for name, dataset in (("compcars", "compcars"), ("cub_cls", "cub")):
    c = a3m_config.get_config(f"dataset={name}")
    assert (c.dataset, c.eval.protocol, c.a3m.use_attribute_labels) == (dataset, "classification", True)
  assert a3m_config.get_config("dataset=compcars").image_size == 448
  for name in ("cub", "cars196"):
    c = a3m_config.get_config(f"dataset={name},variant=att1")
    assert not c.a3m.use_attribute_labels and c.embedding_dim == 384 and c.a3m.variant == "att1"
  assert a3m_config.get_config("dataset=cub,dim=128").embedding_dim == 128
  with pytest.raises(ValueError, match="dataset="):
    a3m_config.get_config("dataset=imagenet")
  with pytest.raises(ValueError, match="config.a3m.variant"):
    a3m.make_model(_config(variant="att3"))
  with pytest.raises(ValueError, match="use_attribute_labels"):
    config = _config()
    config.attribute_sizes = ()
    a3m.make_model(config)


def test_training_on_synthetic_reports_recall_and_attribute_accuracy(tmp_path):
  config = a3m_config.get_config()
  config.a3m.feature_dim = 8
  config.embedding_dim = 16
  results, lines = train_tiny(config, tmp_path, **{"optimizer.learning_rate": 0.001})
  train = [line for line in lines if line["split"] == "train"]
  assert [line["step"] for line in train] == [2, 4]
  assert {"loss", "loss_attribute", "attribute_accuracy", "category_accuracy"} <= set(train[0])
  for split in ("val", "test"):
    (line,) = [line for line in lines if line["split"] == split]
    assert {"recall@1", "attribute_accuracy", "attribute_accuracy/head_colour", "attribute_accuracy/leg_length"} <= set(line)
    per_attribute = [v for k, v in line.items() if k.startswith("attribute_accuracy/")]
    assert len(per_attribute) == 12 and line["attribute_accuracy"] == pytest.approx(np.mean(per_attribute))
  assert results["recall@1"] == pytest.approx(lines[-1]["recall@1"])


def test_batchnorm_relu_branches():
  config = _config(branch="batchnorm_relu")
  params, state = _init(config)
  k, d = len(SIZES), config.a3m.feature_dim
  branch_stats = state["batch_stats"]["attribute_branches"]
  assert branch_stats["norm"]["mean"].shape == branch_stats["pool_norm"]["mean"].shape == (k * d,)
  assert set(state["batch_stats"]) >= {"category_norm", "category_pool_norm"}
  out = _apply(config, params, state, train=True)
  assert out["attention"].shape == (4, 3, 2, 2) and out["attribute_logits"].shape == (4, 3, 4)
  assert np.all(np.asarray(out["attention"]) >= 0.5)  # ReLU features: every score V^T a_k >= 0


def _numpy_batch_norm(x, axis=0, eps=1e-5):
  """Train-mode BatchNorm at its initial scale 1 and bias 0: statistics over `axis`."""
  return (x - x.mean(axis=axis)) / np.sqrt(x.var(axis=axis) + eps)


@pytest.mark.parametrize("attention_norm,branch", [("none", "linear"), ("scale", "linear"),
                                                   ("batchnorm", "batchnorm_relu")])
def test_every_output_follows_from_the_captured_v_and_a(attention_norm, branch):
  """Eqs. 5-10 in NumPy from the model's own V `[B, L, d]` and A `[B, K, d]`: the attentions, f_region,
  f_attr, f_final, the embedding and every classifier's logits (train mode, batch statistics)."""
  config = _config(attention_norm=attention_norm, branch=branch)
  params, state = _init(config)
  out, variables = a3m.make_model(config).apply({"params": params, **state}, _batch()["image"], train=True,
                                                mutable=["batch_stats", "intermediates"])
  v, a = (np.asarray(variables["intermediates"][name][0], np.float64) for name in ("V", "A"))
  (b, regions, d), k = v.shape, a.shape[1]
  v_cat = v.mean(axis=1)
  if branch == "batchnorm_relu":  # the public code's BN + ReLU after pooling
    v_cat = np.maximum(_numpy_batch_norm(v_cat), 0.0)
  scores, attribute_scores = np.einsum("bld,bkd->bkl", v, a), np.einsum("bkd,bd->bk", a, v_cat)
  if attention_norm == "scale":
    scores, attribute_scores = scores / np.sqrt(d), attribute_scores / np.sqrt(d)
  if attention_norm == "batchnorm":  # statistics of the K-mean scores, applied to each attribute's
    pooled = scores.mean(axis=1)
    scores = (scores - pooled.mean(axis=0)) / np.sqrt(pooled.var(axis=0) + 1e-5)
    attribute_scores = _numpy_batch_norm(attribute_scores)
  m = _sigmoid(scores)
  m_region = _sigmoid(scores.mean(axis=1)) if attention_norm == "batchnorm" else m.max(axis=1)
  s_attr = _sigmoid(attribute_scores)
  f_final = np.einsum("bld,bl->bd", v, m_region) / regions + np.einsum("bkd,bk->bd", a, s_attr) / k
  dense = lambda x, name: x @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])
  embedding = dense(f_final, "embedding")
  attribute_logits = (np.einsum("bkd,kdv->bkv", a, np.asarray(params["attribute_classifiers"]["kernel"]))
                      + np.asarray(params["attribute_classifiers"]["bias"]))
  want = {"attention": m.reshape(b, k, 2, 2), "region_attention": m_region.reshape(b, 2, 2),
          "attribute_weights": s_attr, "features": f_final, "embedding": embedding,
          "logits": dense(embedding, "classifier"), "category_logits": dense(v_cat, "category_classifier")}
  for name, value in want.items():
    np.testing.assert_allclose(out[name], value, rtol=2e-4, atol=2e-5, err_msg=name)
  valid = np.asarray(a3m.value_mask(SIZES))[None]
  np.testing.assert_allclose(np.asarray(out["attribute_logits"])[np.broadcast_to(valid, (b, *valid.shape[1:]))],
                             attribute_logits[np.broadcast_to(valid, attribute_logits.shape)], rtol=2e-4, atol=2e-5)


def test_shipped_synthetic_config_starts_with_gates_neither_on_nor_off():
  """configs/a3m.py (synthetic) at initialisation on 32 synthetic training images, BatchNorm in train
  mode: most region and attribute weights are away from sigmoid's flat ends (with the raw scores of
  Eqs. 5 / 7 at d = 128, the region attention is > 0.99 everywhere and about half the gates saturate)."""
  config = a3m_config.get_config()
  data = datasets.load(config)
  config = loop.with_dataset_info(config, data)
  images = np.stack([pipeline.normalize(data.train[i]["image"]) for i in range(0, 32 * 37, 37)])
  params, state = jax.jit(lambda: a3m.init_state(jax.random.key(0), config, {"image": images}))()
  out, _ = jax.jit(lambda p, s, x: a3m.make_model(config).apply({"params": p, **s}, x, train=True,
                                                                  mutable=["batch_stats"]))(params, state, images)
  for name in ("region_attention", "attribute_weights"):
    weights = np.asarray(out[name])
    assert np.mean((weights > 0.02) & (weights < 0.98)) > 0.75, (name, np.quantile(weights, [0.1, 0.5, 0.9]))
