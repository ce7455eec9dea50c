"""VAPNet: the loss of Eqs. 5-9 against NumPy for every variant, the EMA of Eq. 7 exactly, the
encoders' gradients against the closed form of Eq. 6 (so no gradient reaches the mean
encoders), the wiring of local views and RoIAlign, the views' own BatchNorm batch and statistics,
an embedding identical in values and cost to the baseline's, config errors, and short training
runs (lambda = 0 with views against `variant=aux_only`).

One tiny model (64 px, so res5 is 2 x 2) is initialised once per module; one gradient program
is compiled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import baseline as baseline_config
from configs import vapnet as vapnet_config
from jaxret.backbones import get_backbone
from jaxret.methods import baseline, vapnet
from jaxret.ops.local_views import grid_patch_boxes
from jaxret.ops.roi_align import roi_align
from tests.methods.conftest import train_tiny

NUM_CLASSES = 5
M, K, B = 2, 8, 4  # views per image, attribute dimension, batch
RNG = jax.random.key(7)


def _config(**vapnet_overrides):
  config = vapnet_config.get_config()
  config.unlock()
  config.backbone_width = 0.0625
  config.image_size = 64
  config.num_classes = NUM_CLASSES
  config.embedding_dim = 16
  config.vapnet.num_views = M
  config.vapnet.attribute_dim = K
  config.vapnet.weight = 10.0  # lambda, the paper's (the synthetic config's is smaller)
  config.vapnet.update(vapnet_overrides)
  config.lock()
  return config


def _batch():
  rng = np.random.default_rng(0)
  return {"image": jnp.asarray(rng.normal(size=(B, 64, 64, 3)), jnp.float32),
          "label": jnp.asarray([0, 1, 2, 4], jnp.int32)}


@pytest.fixture(scope="module")
def model():
  config = _config()
  params, state = jax.jit(lambda: vapnet.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()
  # Mean encoders away from the encoders (as after some steps), so Eq. 5 and Eq. 6 differ.
  noise = np.random.default_rng(1)
  state = dict(state, mean_encoders=jax.tree.map(
      lambda x: x + jnp.asarray(noise.normal(scale=0.1, size=x.shape), jnp.float32), state["mean_encoders"]))
  # The views' running statistics away from the images' too (as after some steps).
  stats = state["batch_stats"]
  views_stats = jax.tree.map(lambda x: x * 1.5 + 0.1, stats["backbone_views"])
  state["batch_stats"] = {**stats, "backbone_views": views_stats}
  return config, params, state


@pytest.fixture(scope="module")
def train_outputs(model):
  """The model's training-mode outputs on the views the loss draws with RNG."""
  config, params, state = model

  def forward():
    views, boxes = vapnet.local_views(RNG, _batch()["image"], config)
    outputs, _ = vapnet.make_model(config).apply(
        {"params": params, "batch_stats": state["batch_stats"]}, _batch()["image"], train=True, views=views,
        boxes=boxes, mutable=["batch_stats"])
    return outputs

  return jax.tree.map(lambda x: np.asarray(x, np.float64), jax.jit(forward)())


def _log_softmax(z):
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _kl(target, logits):
  log_p, log_q = _log_softmax(target), _log_softmax(logits)
  return np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)


def _encode(theta, x):
  return x @ np.asarray(theta["kernel"], np.float64) + np.asarray(theta["bias"], np.float64)


def _cross_entropy(logits, labels):
  return np.mean(-_log_softmax(logits)[np.arange(len(labels)), labels])


def _consistency(out, teacher_local, teacher_global):
  """Eq. 5 / 6 from its definition: mean over images of the sum over views of the two KLs."""
  total = 0.0
  for b in range(B):
    for i in range(M):
      total += _kl(_encode(teacher_global, out["local_features"][b, i]), out["attributes_local"][b, i])
      total += _kl(_encode(teacher_local, out["roi_features"][b, i]), out["attributes_global"][b, i])
  return total / B


def test_full_loss_ema_and_encoder_gradients(model, train_outputs):
  config, params, state = model
  out, labels = train_outputs, np.asarray(_batch()["label"])
  grad_fn = jax.jit(jax.value_and_grad(lambda p: vapnet.loss_fn(p, state, _batch(), RNG, config), has_aux=True))
  (loss, (metrics, new_state)), grads = grad_fn(params)

  # Eq. 9 with Eq. 6: the mean encoders (not the encoders) give the targets.
  mean = state["mean_encoders"]
  loss_c = _consistency(out, mean["local"], mean["global"])
  loss_a = _cross_entropy(out["logits"], labels)
  np.testing.assert_allclose(metrics["loss_consistency"], loss_c, rtol=1e-5)
  np.testing.assert_allclose(metrics["loss_aux"], loss_a, rtol=1e-5)
  np.testing.assert_allclose(loss, loss_a + 10.0 * loss_c, rtol=1e-5)
  assert loss_c > 0

  # Eq. 7 exactly: E_t = (1 - a) E_{t-1} + a theta_t, a = 0.2; batch statistics updated.
  for side in ("local", "global"):
    for name in ("kernel", "bias"):
      theta, previous = np.asarray(params[f"encoder_{side}"][name]), np.asarray(mean[side][name])
      want = np.float32(1.0 - 0.2) * previous + np.float32(0.2) * theta
      np.testing.assert_allclose(new_state["mean_encoders"][side][name], want, rtol=1e-6, atol=1e-9)  # ~1 ulp
  np.testing.assert_array_equal(vapnet.ema_update({"w": jnp.asarray([1.0, -4.0])}, {"w": jnp.asarray([6.0, 1.0])},
                                                  0.25)["w"], [2.25, -2.75])
  assert not np.allclose(new_state["batch_stats"]["backbone"]["bn1"]["mean"],
                         state["batch_stats"]["backbone"]["bn1"]["mean"])

  # No gradient reaches the mean encoders: they are not parameters, and the encoders' gradients
  # are exactly those of Eq. 6 with the targets' encoders held constant:
  # dL/dW_L = lambda / B sum_{b,i} g(F_L^i) (softmax(A_L^i) - softmax(E[T_G](F_L^i)))^T.
  assert set(grads) == set(params) and "mean_encoders" not in params
  for side, features, teacher in (("local", "local_features", mean["global"]),
                                  ("global", "roi_features", mean["local"])):
    delta = np.exp(_log_softmax(out[f"attributes_{side}"])) - np.exp(_log_softmax(_encode(teacher, out[features])))
    want_kernel = 10.0 / B * np.einsum("bic,bik->ck", out[features], delta)
    want_bias = 10.0 / B * delta.sum(axis=(0, 1))
    for name, want in (("kernel", want_kernel), ("bias", want_bias)):  # float32 sums: tolerance of the scale
      np.testing.assert_allclose(grads[f"encoder_{side}"][name], want, atol=1e-5 * np.abs(want).max())

  # ... and the constraint reaches the retrieval model: every backbone parameter has a gradient.
  backbone = jax.tree_util.tree_flatten_with_path(grads["backbone"])[0]
  assert not [jax.tree_util.keystr(path) for path, leaf in backbone if not np.any(np.asarray(leaf) != 0)]


def test_each_variant_is_its_row_of_table_1(model, train_outputs):
  config, params, state = model
  out, batch = train_outputs, _batch()
  variants = ("aux_only", "no_mean_encoders", "consistency_only")
  configs = {name: _config(variant=name) for name in variants}
  base = baseline_config.get_config()
  base.unlock()
  base.update(backbone_width=0.0625, image_size=64, num_classes=NUM_CLASSES, embedding_dim=16)
  retrieval_params = {k: params[k] for k in ("backbone", "embedding", "classifier")}

  def losses():
    results = {name: vapnet.loss_fn(params, state, batch, RNG, c) for name, c in configs.items()}
    results["baseline"] = baseline.loss_fn(retrieval_params, {"batch_stats": state["batch_stats"]}, batch, None, base)
    return {name: (loss, metrics, new_state) for name, (loss, (metrics, new_state)) in results.items()}

  results = jax.jit(losses)()
  # L_a only: the baseline's loss (no views: batch statistics of the B images alone).
  assert "loss_consistency" not in results["aux_only"][1]
  np.testing.assert_allclose(results["aux_only"][0], results["baseline"][0], rtol=1e-6)
  # L_a + lambda L_c (Eq. 5): the encoders themselves give the targets; no mean encoders.
  encoders = {"local": params["encoder_local"], "global": params["encoder_global"]}
  loss_c = _consistency(out, encoders["local"], encoders["global"])
  np.testing.assert_allclose(results["no_mean_encoders"][0], _cross_entropy(out["logits"], np.asarray(batch["label"]))
                             + 10.0 * loss_c, rtol=1e-5)
  passed_through = jax.tree.map(np.array_equal, results["no_mean_encoders"][2]["mean_encoders"], state["mean_encoders"])
  assert all(jax.tree.leaves(passed_through))  # Eq. 5 has no mean encoders: nothing updates them
  # lambda L_c_hat alone.
  loss_c_hat = _consistency(out, state["mean_encoders"]["local"], state["mean_encoders"]["global"])
  np.testing.assert_allclose(results["consistency_only"][0], 10.0 * loss_c_hat, rtol=1e-5)
  assert abs(loss_c - loss_c_hat) > 1e-3


def test_views_and_roi_features_are_wired_to_the_patches(model):
  config, params, state = model
  images = _batch()["image"]
  views, boxes = jax.jit(lambda: vapnet.local_views(RNG, images, config))()
  grid = {tuple(box) for box in grid_patch_boxes(64, 64)}
  assert views.shape == (B, M, 64, 64, 3) and all(tuple(box) in grid for box in np.asarray(boxes).reshape(-1, 4))
  variables = {"params": params, "batch_stats": state["batch_stats"]}
  backbone = get_backbone(config.backbone, width_multiplier=config.backbone_width)
  stats = state["batch_stats"]

  def forward():  # eval mode: each image's features depend on that image alone (and its statistics)
    out = vapnet.make_model(config).apply(variables, images, train=False, views=views, boxes=boxes)
    f_global = backbone.apply({"params": params["backbone"], "batch_stats": stats["backbone"]}, images,
                              train=False)["res5"]  # [B, 2, 2, C]
    f_local = backbone.apply({"params": params["backbone"], "batch_stats": stats["backbone_views"]},
                             views.reshape(-1, 64, 64, 3), train=False)["res5"]
    return out, f_global, f_local

  out, f_global, f_local = jax.jit(forward)()
  np.testing.assert_allclose(out["local_features"], np.mean(f_local, axis=(1, 2)).reshape(B, M, -1), rtol=1e-4,
                             atol=1e-5)
  # RoIAlign on res5 (stride 32 here) at the patch boxes, 7 x 7 bins of 2 x 2 samples, then GAP.
  want = np.mean(roi_align(f_global, boxes, (7, 7), 1 / 32, 2), axis=(2, 3))
  np.testing.assert_allclose(out["roi_features"], want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["attributes_local"], _encode(params["encoder_local"], np.asarray(
      out["local_features"], np.float64)), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["attributes_global"], _encode(params["encoder_global"], np.asarray(
      out["roi_features"], np.float64)), rtol=1e-4, atol=1e-5)


def test_views_are_a_batch_norm_batch_of_their_own(model):
  """Issue 18: in training the images are normalised over the B images and the views over the B M
  views, each updating its own running statistics (the images' alone are used at test time);
  `view_statistics = "shared"` is one batch of B (1 + M) and one set of statistics. The views'
  statistics start from pretrained weights as the images' do."""
  config, params, state = model
  shared_config = _config(view_statistics="shared")
  images = _batch()["image"]
  views, boxes = vapnet.local_views(RNG, images, config)
  flat_views = views.reshape(-1, 64, 64, 3)
  stats = state["batch_stats"]
  backbone = get_backbone(config.backbone, width_multiplier=config.backbone_width)

  def forward():
    def train_backbone(x, batch_stats):
      return backbone.apply({"params": params["backbone"], "batch_stats": batch_stats}, x, train=True,
                            mutable=["batch_stats"])

    own = vapnet.make_model(config).apply({"params": params, "batch_stats": stats}, images, train=True, views=views,
                                          boxes=boxes, mutable=["batch_stats"])
    shared = vapnet.make_model(shared_config).apply({"params": params, "batch_stats": {"backbone": stats["backbone"]}},
                                                    images, train=True, views=views, boxes=boxes,
                                                    mutable=["batch_stats"])
    return (own, shared, train_backbone(images, stats["backbone"]), train_backbone(flat_views, stats["backbone_views"]),
            train_backbone(jnp.concatenate([images, flat_views]), stats["backbone"]))

  (own, own_stats), (shared, shared_stats), alone, views_alone, together = jax.jit(forward)()
  tol = {"rtol": 1e-4, "atol": 1e-5}
  pooled = lambda out: np.mean(out[0]["res5"], axis=(1, 2))
  np.testing.assert_allclose(own["local_features"].reshape(B * M, -1), pooled(views_alone), **tol)
  assert set(own_stats["batch_stats"]) == {"backbone", "backbone_views"}
  for name, want in (("backbone", alone), ("backbone_views", views_alone)):
    for got, expected in zip(jax.tree.leaves(own_stats["batch_stats"][name]), jax.tree.leaves(want[1]["batch_stats"])):
      np.testing.assert_allclose(got, expected, **tol)
  # "shared": one batch of images and views, one set of statistics.
  np.testing.assert_allclose(shared["local_features"].reshape(B * M, -1), pooled(together)[B:], **tol)
  assert set(shared_stats["batch_stats"]) == {"backbone"}
  for got, expected in zip(jax.tree.leaves(shared_stats["batch_stats"]), jax.tree.leaves(together[1]["batch_stats"])):
    np.testing.assert_allclose(got, expected, **tol)
  # Pretrained weights fill "backbone"; the hook gives the views the same statistics.
  _, hooked = vapnet.after_pretrained_backbone(params, state, config)
  for got, expected in zip(jax.tree.leaves(hooked["batch_stats"]["backbone_views"]),
                           jax.tree.leaves(stats["backbone"])):
    np.testing.assert_array_equal(got, expected)


def test_embedding_is_the_baseline_retrieval_module(model):
  config, params, state = model
  base = baseline_config.get_config()
  base.unlock()
  base.update(backbone_width=0.0625, image_size=64, num_classes=NUM_CLASSES, embedding_dim=16)
  retrieval_params = {k: params[k] for k in ("backbone", "embedding", "classifier")}
  images = _batch()["image"]
  embed = jax.jit(lambda p, s, x: vapnet.embed_fn(p, s, x, config)).lower(params, state, images).compile()
  embed_baseline = jax.jit(lambda p, s, x: baseline.embed_fn(p, s, x, base)).lower(
      retrieval_params, state, images).compile()
  np.testing.assert_allclose(embed(params, state, images), embed_baseline(retrieval_params, state, images),
                             rtol=1e-6)
  # The same compiled cost: nothing of the attribute modules runs at test time.
  assert embed.cost_analysis()["flops"] == embed_baseline.cost_analysis()["flops"] > 0


def test_configs_and_errors():
  for name, dataset in (("cub", "cub"), ("cars196", "cars196"), ("aircraft", "fgvc_aircraft"), ("inshop", "inshop")):
    c = vapnet_config.get_config(f"dataset={name}")
    assert c.dataset == dataset and c.backbone == "resnet50" and c.image_size == 224 and c.batch_size == 32
    assert (c.vapnet.num_views, c.vapnet.attribute_dim, c.vapnet.ema_ratio, c.vapnet.weight) == (4, 256, 0.2, 10.0)
    assert c.optimizer.learning_rate == 1e-5 and c.optimizer.schedule == "exponential"
    assert c.total_steps == 40 * c.optimizer.decay_every  # 200 epochs, decay every 5
  assert vapnet_config.get_config("dataset=inshop").eval.ks == (1, 10, 20, 30, 40)
  c = vapnet_config.get_config("dataset=cub,variant=aux_only,views=8,dim=64")
  assert (c.vapnet.variant, c.vapnet.num_views, c.vapnet.attribute_dim) == ("aux_only", 8, 64)
  with pytest.raises(ValueError, match="dataset="):
    vapnet_config.get_config("dataset=imagenet")
  for key, value, match in (("variant", "l_a", "config.vapnet.variant"), ("num_views", 341, "config.vapnet.num_views"),
                            ("ema_ratio", 1.0, "config.vapnet.ema_ratio"),
                            ("attribute_dim", 0, "config.vapnet.attribute_dim"),
                            ("sampling_ratio", 0, "config.vapnet.sampling_ratio"),
                            ("view_statistics", "joint", "config.vapnet.view_statistics")):
    with pytest.raises(ValueError, match=match):
      vapnet.make_model(_config(**{key: value}))


def test_training_with_lambda_zero_scores_as_aux_only(tmp_path):
  """Issue 18: with their own BatchNorm batch and statistics, the views change nothing of the
  retrieval module when lambda = 0: the same training losses and validation / test Recall@K as
  `variant=aux_only` (the same seed, so the same batches and initial parameters; the step's rng
  draws only the views, and 0 times the consistency gradient adds exact zeros). With views and
  images in one BatchNorm batch (before), the training CE already differed at step 2 and the
  validation Recall@1 was 0.75 against 0.625."""
  runs = {}
  for variant in ("full", "aux_only"):
    config = vapnet_config.get_config(f"variant={variant}")
    config.vapnet.attribute_dim = 8
    config.vapnet.weight = 0.0
    runs[variant] = train_tiny(config, tmp_path / variant)
  lines = {name: {split: [line for line in run_lines if line["split"] == split] for split in ("train", "val", "test")}
           for name, (_, run_lines) in runs.items()}
  full, aux = lines["full"], lines["aux_only"]
  assert [line["step"] for line in full["train"]] == [2, 4]
  assert all(line["loss_consistency"] > 0 and np.isfinite(line["loss"]) for line in full["train"])
  np.testing.assert_allclose([line["loss_aux"] for line in full["train"]], [line["loss_aux"] for line in aux["train"]],
                             rtol=1e-6)
  ks = ("recall@1", "recall@2", "recall@4", "recall@8")
  (val_full,), (val_aux,) = full["val"], aux["val"]
  assert [val_full[k] for k in ks] == [val_aux[k] for k in ks]
  (test_full,), (test_aux,) = full["test"], aux["test"]
  assert [test_full[k] for k in ks] == [test_aux[k] for k in ks]
  assert runs["full"][0]["recall@1"] == pytest.approx(test_full["recall@1"])
