"""DeML: the CAMs against NumPy, the scales' crops, the embedding, the losses of Eqs. 4-6 against
NumPy transcriptions for each adversary, gradients into every module (reversed for the
adversary's opponents), configs, and a short training run.

Compiling is the cost here: one tiny DeML(I=2, J=2) (64 px: res4 4 x 4, res5 2 x 2) is
initialised once, and one program computes its loss, gradients and outputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import deml as deml_config
from jaxret.methods import deml
from jaxret.ops import crop_zoom
from tests.methods.conftest import train_tiny

LABELS = np.array([0, 0, 1, 1, 2, 2], np.int32)  # P x K = 3 x 2


def _config(**overrides):
  config = deml_config.get_config("I=2,J=2")
  config.unlock()
  config.backbone_width = 0.0625
  config.num_classes = 3
  config.embedding_dim = 16  # 4 learners of 4 dims
  config.deml.adversary_dim = 8
  config.deml.update(overrides)
  config.lock()
  return config


def _images():
  return jnp.asarray(np.random.default_rng(0).normal(size=(6, 64, 64, 3)), jnp.float32)


@pytest.fixture(scope="module")
def model():
  """(config, params, state, loss, metrics, grads, train outputs, eval outputs, new state), one compile."""
  config = _config()
  batch = {"image": _images(), "label": jnp.asarray(LABELS)}
  params, state = jax.jit(lambda: deml.init_state(jax.random.key(0, impl="rbg"), config, batch))()
  net = deml.make_model(config)

  def run(params, state, batch):
    (loss, (metrics, new_state)), grads = jax.value_and_grad(deml.loss_fn, has_aux=True)(
        params, state, batch, None, config)
    train_out = net.apply({"params": params, **state}, batch["image"], train=True, mutable=["batch_stats"])[0]
    eval_out = net.apply({"params": params, **state}, batch["image"], train=False)
    eval_out["embed_fn"] = deml.embed_fn(params, state, batch["image"], config)
    return loss, metrics, grads, train_out, eval_out, new_state

  return (config, params, state, *jax.tree.map(np.asarray, jax.jit(run)(params, state, batch)))


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_channel_attention_is_the_cam_equation():
  u = np.random.default_rng(1).normal(size=(2, 3, 3, 5)).astype(np.float32)
  cam = deml.ChannelAttention(num_branches=4, hidden=6)
  variables, caps = jax.jit(lambda u: cam.init_with_output(jax.random.key(0), u)[::-1])(u)
  w1, w2 = np.asarray(variables["params"]["squeeze"]), np.asarray(variables["params"]["excite"])
  assert caps.shape == (4, 2, 3, 3, 5)
  for j in range(4):
    weights = _sigmoid(np.maximum(u.mean(axis=(1, 2)) @ w1[j], 0) @ w2[j])  # [B, C]
    np.testing.assert_allclose(caps[j], u * weights[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_learners_of_a_scale_share_one_kernel_without_bias(model):
  """Sec. 3.2's shared embedding layer (the public code's `param { name: "w" }`, no bias): the J
  learners differ only through their inputs (the CAMs); `tied_learners=False` gives J kernels + biases."""
  pooled = np.random.default_rng(2).normal(size=(3, 2, 5)).astype(np.float32)  # [J, B, C]
  for tied in (True, False):
    variables, out = jax.jit(lambda x, tied=tied: deml.Learners(4, tied).init_with_output(jax.random.key(0), x)[::-1])(
        pooled)
    params = jax.tree.map(np.asarray, variables["params"])
    assert {k: v.shape for k, v in params.items()} == (
        {"kernel": (5, 4)} if tied else {"kernel": (3, 5, 4), "bias": (3, 4)})
    for j in range(3):
      want = pooled[j] @ params["kernel"] if tied else pooled[j] @ params["kernel"][j] + params["bias"][j]
      np.testing.assert_allclose(out[:, j], want, rtol=1e-5, atol=1e-6)
  config, params, *_ = model  # the default: res5 channels (32 at width 1/16) -> d = 4, per scale
  assert config.deml.tied_learners
  assert {i: {k: v.shape for k, v in params[f"learners_{i}"].items()} for i in range(2)} == {
      0: {"kernel": (32, 4)}, 1: {"kernel": (32, 4)}}


def test_outputs_embedding_and_crops(model):
  config, params, state, _, _, _, train_out, eval_out, _ = model
  shapes = {k: v.shape for k, v in eval_out.items() if k != "embed_fn"}
  assert shapes == {"embedding": (6, 16), "learners": (6, 2, 2, 4), "attention": (6, 1, 64, 64),
                    "boxes": (6, 1, 4), "adversary": (6, 2, 2, 8)}
  # The test embedding: the I J learners, each L2-normalised, concatenated (scale-major).
  np.testing.assert_allclose(eval_out["embedding"], _unit(eval_out["learners"]).reshape(6, 16), rtol=1e-5)
  np.testing.assert_allclose(eval_out["embed_fn"], eval_out["embedding"], atol=1e-5)
  # Scale 2's input is the crop around scale 1's above-mean attention (squared as the public code).
  for out in (train_out, eval_out):
    np.testing.assert_allclose(out["boxes"][:, 0], crop_zoom.attention_box(jnp.asarray(out["attention"][:, 0])))
  assert np.all(train_out["attention"] >= 0) and np.ptp(train_out["attention"]) > 0


def test_each_scale_has_its_own_batchnorm_statistics(model):
  """Full images and zoomed crops are normalised with statistics of their own: a training step moves
  scale 1's (`batch_stats["backbone"]`) by the full images only and scale 2's
  (`batch_stats["backbone_zoom1"]`, same layout) by the crops; parameters are not copied."""
  from jaxret.backbones import get_backbone
  config, params, state, _, _, _, train_out, _, new_state = model
  assert set(new_state["batch_stats"]) == {"backbone", "backbone_zoom1"} and "backbone_zoom1" not in params
  assert jax.tree.structure(new_state["batch_stats"]["backbone"]) == jax.tree.structure(
      new_state["batch_stats"]["backbone_zoom1"])
  backbone = get_backbone(config.backbone, width_multiplier=config.backbone_width)
  crops = crop_zoom.crop_and_zoom(_images(), jnp.asarray(train_out["boxes"][:, 0]), (64, 64))
  for name, inputs in (("backbone", _images()), ("backbone_zoom1", crops)):
    variables = {"params": params["backbone"], "batch_stats": state["batch_stats"][name]}
    _, want = jax.jit(lambda v, x: backbone.apply(v, x, train=True, stop="res3", mutable=["batch_stats"]))(
        variables, inputs)
    fnet = [k for k in want["batch_stats"] if k == "bn1" or k.startswith(("layer1_", "layer2_"))]
    assert fnet
    for layer in fnet:  # FNet's BatchNorms: one update, by this scale's inputs
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                   new_state["batch_stats"][name][layer], jax.tree.map(np.asarray, want["batch_stats"][layer]))
  # ImageNet statistics (config.init_weights) reach every scale; shared statistics stay an option.
  loaded = {**state["batch_stats"], "backbone": jax.tree.map(lambda v: v + 1.0, state["batch_stats"]["backbone"])}
  _, hooked = deml.after_pretrained_backbone(params, {"batch_stats": loaded}, config)
  jax.tree.map(np.testing.assert_array_equal, hooked["batch_stats"]["backbone_zoom1"], loaded["backbone"])
  batch = {"image": _images()}
  _, shared = jax.eval_shape(lambda: deml.init_state(jax.random.key(0), _config(per_scale_batch_stats=False), batch))
  assert set(shared["batch_stats"]) == {"backbone"}


def _binomial_deviance(x, labels, alpha=2.0, beta=0.5, costs=(1.0, 35.0)):
  """Eq. 5 for one learner, pair by pair."""
  n = len(labels)
  positive, negative = [], []
  for p in range(n):
    for q in range(n):
      if p == q:
        continue
      s = float(labels[p] == labels[q])
      d = x[p] @ x[q] / (np.linalg.norm(x[p]) * np.linalg.norm(x[q]))
      gamma = costs[0] if s else costs[1]
      (positive if s else negative).append(np.log1p(np.exp(-(2 * s - 1) * alpha * (d - beta) * gamma)))
  return np.mean(positive) + np.mean(negative)


def _expected_loss(out, params, config, adversary):
  learners = out["learners"].astype(np.float64)  # [B, I, J, d]
  b, num_i, num_j, _ = learners.shape
  metric = np.mean([_binomial_deviance(learners[:, i, j], LABELS) for i in range(num_i) for j in range(num_j)])
  decay = 0.014 / (2 * num_i * num_j * b) * np.sum(learners**2)
  ntri = 0.0
  for i in range(num_i):
    for j in range(num_j):
      w = np.asarray(params[f"learners_{i}"]["kernel"], np.float64).T  # w_ij = w_i [d, d1]: tied
      a = w @ w.T - np.eye(w.shape[0])
      ntri += 0.25 * np.trace(a * a)
  diversity = 0.0
  for i in range(num_i):
    for j in range(num_j):
      for k in range(num_j):
        if adversary == "grl":
          f = out["adversary"][:, i].astype(np.float64)
          diversity += np.mean(np.sum((f[:, j] - f[:, k]) ** 2, axis=-1))
        elif adversary == "hinge" and j < k:  # the public code: one ContrastiveLoss at weight 0.2 per pair
          distance = np.linalg.norm(_unit(learners[:, i, j]) - _unit(learners[:, i, k]), axis=-1)
          diversity += 0.2 * np.mean(np.maximum(2.0 - distance, 0) ** 2 / 2)
  return metric + decay + ntri + diversity, metric, decay, ntri


@pytest.mark.parametrize("adversary", ["grl", "hinge", "none"])
def test_total_loss_is_eqs_4_to_6(model, adversary):
  config, params, _, loss, metrics, _, train_out, _, _ = model
  if adversary == "grl":  # the compiled loss_fn of the fixture
    got, got_metrics = loss, metrics
  else:
    got, got_metrics = deml.total_loss(train_out, params, jnp.asarray(LABELS), _config(adversary=adversary))
  want, metric, decay, ntri = _expected_loss(train_out, params, config, adversary)
  np.testing.assert_allclose(got, want, rtol=1e-4)
  np.testing.assert_allclose(got_metrics["loss_metric"], metric, rtol=1e-4)
  np.testing.assert_allclose(got_metrics["loss_activation_decay"], decay, rtol=1e-4)
  np.testing.assert_allclose(got_metrics["loss_ntri"], ntri, rtol=1e-4)
  unit = _unit(train_out["learners"])
  cos = np.einsum("bid,bid->bi", unit[:, :, 0], unit[:, :, 1])  # J = 2: one pair per scale
  np.testing.assert_allclose(got_metrics["learner_similarity"], cos.mean(), rtol=1e-4, atol=1e-6)


def test_hinge_sums_the_public_codes_pair_losses_at_weight_0_2():
  """J = 3: three ContrastiveLoss layers of weight 0.2 each (an average over the pairs would be a third)."""
  config = _config(adversary="hinge", num_scales=1, num_branches=3)
  learners = np.random.default_rng(3).normal(size=(6, 1, 3, 4)).astype(np.float32)
  params = {"learners_0": {"kernel": np.zeros((8, 4), np.float32)}}
  _, metrics = jax.jit(lambda o, p: deml.total_loss(o, p, jnp.asarray(LABELS), config))({"learners": learners}, params)
  u = _unit(learners[:, 0].astype(np.float64))
  want = sum(0.2 * np.mean(np.maximum(2.0 - np.linalg.norm(u[:, j] - u[:, k], axis=-1), 0) ** 2 / 2)
             for j in range(3) for k in range(j + 1, 3))
  np.testing.assert_allclose(metrics["loss_diversity"], want, rtol=1e-5)


def test_gradients_reach_every_module_and_the_adversary_plays_against_the_rest(model):
  config, params, state, _, metrics, grads, _, _, _ = model
  for name in ("cam_0", "cam_1", "learners_0", "learners_1", "adversary_0", "adversary_1"):
    for path, leaf in jax.tree_util.tree_flatten_with_path(grads[name])[0]:
      if name.startswith("adversary") and jax.tree_util.keystr(path) == "['out']['bias']":
        np.testing.assert_array_equal(leaf, 0)  # F's last bias cancels in F(CA_j) - F(CA_j')
      else:
        assert np.any(leaf != 0), (name, path)
  backbone = jax.tree_util.tree_flatten_with_path(grads["backbone"])[0]
  zero = [jax.tree_util.keystr(path) for path, leaf in backbone if not np.any(leaf != 0)]
  assert not zero, zero
  # Only L_adv reaches the adversary: a small step against its gradient lowers L_adv.
  batch = {"image": _images(), "label": jnp.asarray(LABELS)}
  diversity = jax.jit(lambda p: deml.loss_fn(p, state, batch, None, config)[1][0]["loss_diversity"])
  stepped = dict(params, **{n: jax.tree.map(lambda p, g: p - 1e-3 * g, params[n], grads[n])
                            for n in ("adversary_0", "adversary_1")})
  assert diversity(stepped) < metrics["loss_diversity"]


def test_learners_train_at_ten_times_the_learning_rate(model):
  from jaxret.training import optimizer
  config, params, *_ = model
  groups = optimizer.param_groups(params, config.optimizer.lr_multipliers)
  assert groups["learners_0"]["kernel"] == "0" and groups["learners_1"]["kernel"] == "0"
  assert groups["cam_0"]["squeeze"] == "default" and groups["backbone"]["conv1"]["kernel"] == "default"
  assert config.optimizer.lr_multipliers == (("^learners_", 10.0),)


def test_configs_and_bad_values():
  for name, (dataset, steps, num_i, num_j, ks) in deml_config.DATASETS.items():
    c = deml_config.get_config(f"dataset={name}")
    assert (c.dataset, c.total_steps, c.deml.num_scales, c.deml.num_branches, tuple(c.eval.ks)) == (
        dataset, steps, num_i, num_j, ks)
    assert c.data.classes_per_batch and c.batch_size % c.data.classes_per_batch == 0
  c = deml_config.get_config("dataset=cub,I=1,J=8,adversary=hinge")
  assert (c.deml.num_scales, c.deml.num_branches, c.deml.adversary, c.embedding_dim) == (1, 8, "hinge", 512)
  assert c.optimizer.name == "adam" and c.optimizer.learning_rate == 1e-5 and c.optimizer.weight_decay == 2e-4
  with pytest.raises(ValueError, match="dataset="):
    deml_config.get_config("dataset=imagenet")
  assert deml_config.get_config().deml.adversary_input == "unit" and c.deml.adversary_input == "raw"
  for overrides, key in (({"adversary": "gan"}, "config.deml.adversary"),
                         ({"adversary_input": "scaled"}, "config.deml.adversary_input"), ({"split": "res5"}, "config.deml.split"),
                         ({"attention_layers": ("res3",)}, "config.deml.attention_layers"),
                         ({"num_branches": 0}, "config.deml.num_branches")):
    with pytest.raises(ValueError, match=key):
      deml.make_model(_config(**overrides))
  config = _config()
  config.unlock()
  config.embedding_dim = 3
  with pytest.raises(ValueError, match="config.embedding_dim"):
    deml.make_model(config)
  config.backbone = "vgg16"
  with pytest.raises(ValueError, match="config.backbone='vgg16': DeML splits the backbone"):
    deml.make_model(config)


def test_training_on_synthetic_reports_recall(tmp_path):
  config = deml_config.get_config("dataset=synthetic,I=2,J=2")
  config.embedding_dim = 16
  config.deml.adversary_dim = 8
  results, lines = train_tiny(config, tmp_path, total_steps=2, log_every=1, checkpoint_every=2,
                              **{"data.classes_per_batch": 4})
  train = [line for line in lines if line["split"] == "train"]
  assert [line["step"] for line in train] == [1, 2]
  assert {"loss", "loss_metric", "loss_diversity", "learner_similarity"} <= set(train[0])
  for split in ("val", "test"):
    (line,) = [line for line in lines if line["split"] == split]
    assert 0 <= line["recall@1"] <= line["recall@8"] <= 1
  assert results["recall@1"] == pytest.approx(lines[-1]["recall@1"])
