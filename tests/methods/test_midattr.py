"""Mid-level attributes + part branch: stripe pooling and the part -> attribute routing against
numpy, the part branch's own weights, the descriptor, Eq. 3, each ablation switch, the config's
part tables, and a short re-ID training run.

One tiny model (width 0.0625, 64 px: res3 8 x 8, res5 2 x 2) is initialised once per module;
ablations reuse its parameters (unused ones are ignored; res4 / res5 heads get a fresh kernel),
forward passes run eagerly, and one loss-and-gradient program is compiled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from configs import midattr as midattr_config
from jaxret.data import synthetic
from jaxret.data.builders import dukemtmc_reid, market1501
from jaxret.methods import midattr
from jaxret.ops import horizontal_pooling
from jaxret import weights
from jaxret.training import state as state_lib
from tests.methods.conftest import train_tiny

SIZES = (3, 2, 4)  # K = 3 attributes with 3, 2 and 4 values
PARTS = (("top", (0,)), ("middle", (1, 2)), ("everywhere", (0, 1, 2, 3)))
NUM_CLASSES = 5
RNG = jax.random.key(7)


def _config(**overrides):
  config = midattr_config.get_config()
  config.unlock()
  config.backbone_width = 0.0625
  config.image_size = 64
  config.num_classes = NUM_CLASSES
  config.attribute_sizes = SIZES
  config.midattr.attribute_parts = PARTS
  config.midattr.part_dim = 6
  config.midattr.update(overrides)
  config.lock()
  return config


def _batch():
  rng = np.random.default_rng(0)
  return {"image": jnp.asarray(rng.normal(size=(4, 64, 64, 3)), jnp.float32),
          "label": jnp.asarray([0, 1, 2, 4], jnp.int32),
          "attributes": jnp.asarray([[0, 1, 3], [2, -1, 0], [1, 0, -1], [-1, -1, 2]], jnp.int32)}


@pytest.fixture(scope="module")
def model():
  config = _config()
  params, state = jax.jit(lambda: midattr.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()
  return config, params, state


@pytest.fixture(scope="module")
def loss_and_grads(model):
  """`(loss, (metrics, new_state)), grads = loss_and_grads(batch, rng)`: one compiled program for the
  loss and gradient tests."""
  config, params, state = model
  return jax.jit(lambda batch, rng: jax.value_and_grad(midattr.loss_fn, has_aux=True)(params, state, batch, rng,
                                                                                       config))


def _apply(config, params, state, train=False, capture=False):
  kwargs = dict(rngs={"dropout": RNG}, mutable=["batch_stats"]) if train else {}
  if capture:
    kwargs["capture_intermediates"] = lambda module, _: module.name in ("backbone", "part_stage")
    kwargs["mutable"] = kwargs.get("mutable", []) + ["intermediates"]
  out = midattr.make_model(config).apply({"params": params, **state}, _batch()["image"], train=train, **kwargs)
  if not (train or capture):
    return out
  out, variables = out
  if capture:
    out["stages"] = variables["intermediates"]["backbone"]["__call__"][0]
    if "part_stage" in variables["intermediates"]:
      out["part_res5"] = variables["intermediates"]["part_stage"]["__call__"][0]["res5"]
  return out


def _ce(logits, label):
  logits = np.asarray(logits, np.float64)
  return np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[label]


def test_stripe_pooling_against_numpy():
  # Adaptive bounds: 7 rows into 4 stripes -> rows 0-1, 1-3, 3-5, 5-6 (torch's adaptive pooling).
  rows = horizontal_pooling.stripe_rows(7, 4)
  assert [np.flatnonzero(r).tolist() for r in rows] == [[0, 1], [1, 2, 3], [3, 4, 5], [5, 6]]
  np.testing.assert_array_equal(horizontal_pooling.stripe_rows(8, 4).sum(axis=1), [2, 2, 2, 2])
  x = np.random.default_rng(0).normal(size=(2, 7, 3, 5)).astype(np.float32)
  bounds = [(0, 2), (1, 4), (3, 6), (5, 7)]
  avg = np.asarray(horizontal_pooling.horizontal_average_pool(jnp.asarray(x), 4))
  top = np.asarray(horizontal_pooling.horizontal_max_pool(jnp.asarray(x), 4))
  for s, (a, b) in enumerate(bounds):
    np.testing.assert_allclose(avg[:, s], x[:, a:b].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(top[:, s], x[:, a:b].max(axis=(1, 2)))
  with pytest.raises(ValueError, match="num_stripes=0"):
    horizontal_pooling.stripe_rows(7, 0)


def test_routed_logits_are_an_fc_over_the_assigned_parts():
  rng = np.random.default_rng(1)
  parts = rng.normal(size=(2, 4, 3)).astype(np.float32)
  kernel = rng.normal(size=(3, 4, 3, 5)).astype(np.float32)
  bias = rng.normal(size=(3, 5)).astype(np.float32)
  routing = midattr.routing_matrix(PARTS, 4)
  np.testing.assert_array_equal(routing, [[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]])
  got = np.asarray(midattr.routed_attribute_logits(*map(jnp.asarray, (parts, kernel, bias, routing))))
  for k, (_, assigned) in enumerate(PARTS):
    features = parts[:, list(assigned)].reshape(2, -1)  # the concatenation of its parts
    weights = kernel[k, list(assigned)].reshape(-1, 5)
    np.testing.assert_allclose(got[:, k], features @ weights + bias[k], rtol=1e-5, atol=1e-5)
  # Changing part 3 only moves the attribute assigned to it.
  moved = parts.copy()
  moved[:, 3] += 10.0
  again = np.asarray(midattr.routed_attribute_logits(*map(jnp.asarray, (moved, kernel, bias, routing))))
  np.testing.assert_array_equal(again[:, :2], got[:, :2])
  assert not np.allclose(again[:, 2], got[:, 2])


def test_outputs_routing_and_attribute_predictions(model):
  config, params, state = model
  out = _apply(config, params, state, capture=True)
  shapes = {k: v.shape for k, v in out.items() if k not in ("stages", "part_res5")}
  # res5 is 2 x 2 x 32 (2 stripes x part_dim 6 = 12); res3 8 x 8 x 8 cut into 4 parts.
  assert shapes == {"embedding": (4, 32 + 12), "global_feature": (4, 32), "global_logits": (4, NUM_CLASSES),
                    "part_feature": (4, 12), "part_logits": (4, NUM_CLASSES), "attribute_parts": (4, 4, 8),
                    "attribute_logits": (4, 3, 4)}
  res3 = np.asarray(out["stages"]["res3"])
  np.testing.assert_allclose(out["attribute_parts"], res3.reshape(4, 4, 2, 8, 8).max(axis=(2, 3)), rtol=1e-6)
  head = params["attribute_classifiers"]
  for k, (_, assigned) in enumerate(PARTS):
    features = np.asarray(out["attribute_parts"])[:, list(assigned)].reshape(4, -1)
    want = features @ np.asarray(head["kernel"])[k, list(assigned)].reshape(-1, 4) + np.asarray(head["bias"])[k]
    np.testing.assert_allclose(out["attribute_logits"][:, k, :SIZES[k]], want[:, :SIZES[k]], rtol=1e-4, atol=1e-5)
  assert np.all(np.asarray(out["attribute_logits"])[:, 1, 2:] == -1e9)  # attribute 1 has 2 values
  predicted = np.asarray(midattr.attribute_fn(params, state, _batch()["image"], config))
  np.testing.assert_array_equal(predicted, np.argmax(out["attribute_logits"], -1))
  assert predicted.dtype == np.int32
  np.testing.assert_allclose(midattr.embed_fn(params, state, _batch()["image"], config), out["embedding"])


def test_part_branch_copies_a_mobilenet_last_stage():
  config = _config()
  config.unlock()
  config.backbone, config.backbone_width = "mobilenet_v2", 0.25
  params, state = jax.jit(lambda rng: midattr.init_state(rng, config, _batch()))(RNG)
  stage = {f"features_{i}" for i in range(14, 19)}  # torchvision's features.14-18: res5
  assert set(params["part_stage"]) == stage and set(state["batch_stats"]["part_stage"]) == stage
  jax.tree.map(np.testing.assert_array_equal, params["part_stage"], {k: params["backbone"][k] for k in stage})
  out = _apply(config, params, state, capture=True)
  np.testing.assert_allclose(out["part_res5"], out["stages"]["res5"], rtol=1e-6)


def test_part_branch_has_its_own_weights(model):
  config, params, state = model
  own, backbone = params["part_stage"], {k: v for k, v in params["backbone"].items() if k.startswith("layer4_")}
  assert set(own) == {"layer4_0", "layer4_1"} and set(state["batch_stats"]["part_stage"]) == set(own)
  # part_init = "copy" (default): the copy starts with the backbone's last-stage values, in buffers
  # of its own, and run on res4 it reproduces the backbone's res5.
  jax.tree.map(np.testing.assert_array_equal, own, backbone)
  kernel = own["layer4_0"]["conv1"]["kernel"]
  assert kernel.unsafe_buffer_pointer() != backbone["layer4_0"]["conv1"]["kernel"].unsafe_buffer_pointer()
  base = _apply(config, params, state, capture=True)
  np.testing.assert_allclose(base["part_res5"], base["stages"]["res5"], rtol=1e-6)
  # Own weights: changing the copy moves the part feature only; changing the backbone's last stage
  # moves the global feature only.
  bumped = jax.tree.map(lambda x: x * 1.5, own)
  out = _apply(config, {**params, "part_stage": bumped}, state)
  np.testing.assert_array_equal(out["global_feature"], base["global_feature"])
  assert not np.allclose(out["part_feature"], base["part_feature"])
  backbone_bumped = {**params["backbone"], "layer4_1": jax.tree.map(lambda x: x * 1.5, backbone["layer4_1"])}
  out = _apply(config, {**params, "backbone": backbone_bumped}, state)
  np.testing.assert_array_equal(out["part_feature"], base["part_feature"])
  assert not np.allclose(out["global_feature"], base["global_feature"])


def test_descriptor_is_the_l2_normalised_features_concatenated(model):
  config, params, state = model
  out = _apply(config, params, state)
  g, p = np.asarray(out["global_feature"], np.float64), np.asarray(out["part_feature"], np.float64)
  want = np.concatenate([g / np.linalg.norm(g, axis=1, keepdims=True), p / np.linalg.norm(p, axis=1, keepdims=True)],
                        axis=1)
  np.testing.assert_allclose(out["embedding"], want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(out["embedding"])[:, :32], axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(out["embedding"])[:, 32:], axis=1), 1.0, rtol=1e-5)
  for descriptor, feature in (("global", g), ("part", p)):
    one = _apply(_config(descriptor=descriptor), params, state)
    np.testing.assert_allclose(one["embedding"], feature / np.linalg.norm(feature, axis=1, keepdims=True), rtol=1e-5)
  pooled = _apply(_config(part_descriptor="pooled"), params, state, capture=True)
  res5 = np.asarray(pooled["part_res5"])  # [4, 2, 2, 32]: 2 stripes of 1 row
  np.testing.assert_allclose(pooled["part_feature"], res5.mean(axis=2).reshape(4, 64), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(pooled["part_logits"], out["part_logits"], rtol=1e-6)  # the FC still reads the reduced


def test_loss_is_eq_3_with_unknown_attributes_masked(model, loss_and_grads):
  config, params, state = model
  batch = _batch()
  (loss, (metrics, new_state)), _ = loss_and_grads(batch, RNG)
  out = _apply(config, params, state, train=True)  # the same dropout mask (same rng)
  labels, attributes = np.asarray(batch["label"]), np.asarray(batch["attributes"])
  loss_global = np.mean([_ce(out["global_logits"][i], labels[i]) for i in range(4)])
  loss_local = np.mean([_ce(out["part_logits"][i], labels[i]) for i in range(4)])
  per_attribute = [np.mean([_ce(out["attribute_logits"][i, k, :SIZES[k]], attributes[i, k])
                            for i in range(4) if attributes[i, k] >= 0]) for k in range(3)]
  np.testing.assert_allclose(loss, 5 * loss_global + 4 * loss_local + 0.1 * np.sum(per_attribute), rtol=1e-5)
  np.testing.assert_allclose(metrics["loss_attribute"], np.sum(per_attribute), rtol=1e-5)
  # Dropout is on in training and draws from the step's rng.
  other = loss_and_grads(batch, jax.random.key(8))[0][0]
  assert not np.isclose(other, loss)
  assert set(new_state["batch_stats"]) == {"backbone", "part_stage"}


def test_attribute_layer_switch_taps_the_named_stage(model):
  config, params, state = model
  rng = np.random.default_rng(2)
  for layer, channels in (("res4", 16), ("res5", 32)):
    head = {"kernel": jnp.asarray(rng.normal(size=(3, 4, channels, 4)), jnp.float32), "bias": jnp.zeros((3, 4))}
    out = _apply(_config(attribute_layer=layer), {**params, "attribute_classifiers": head}, state,
                 capture=True)
    stage = np.asarray(out["stages"][layer])
    want = np.asarray(horizontal_pooling.horizontal_max_pool(jnp.asarray(stage), 4))
    np.testing.assert_allclose(out["attribute_parts"], want, rtol=1e-6)
    assert out["attribute_parts"].shape == (4, 4, channels)
  # res5 (2 rows) into 4 parts: each part is one of its rows.
  np.testing.assert_allclose(out["attribute_parts"][:, 0], stage[:, 0].max(axis=1), rtol=1e-6)
  np.testing.assert_allclose(out["attribute_parts"][:, 3], stage[:, 1].max(axis=1), rtol=1e-6)

  none = _config(attribute_layer="none")
  assert "attribute_logits" not in _apply(none, params, state)
  assert midattr.METHOD.attribute_fn_for(none) is None
  no_attributes = {k: v for k, v in _batch().items() if k != "attributes"}
  loss, (metrics, _) = midattr.loss_fn(params, state, no_attributes, RNG, none)
  np.testing.assert_allclose(loss, 5 * metrics["loss_global"] + 4 * metrics["loss_local"], rtol=1e-6)


def test_branch_switches_train_one_branch(model):
  _, params, state = model
  batch = _batch()
  for branches, kept, dropped in (("global", "global", "part"), ("part", "part", "global")):
    config = _config(branches=branches, descriptor=branches)
    out = _apply(config, params, state)
    assert f"{dropped}_logits" not in out and f"{kept}_logits" in out
    loss, (metrics, new_state) = midattr.loss_fn(params, state, batch, RNG, config)
    weight = 5.0 if kept == "global" else 4.0
    name = "loss_global" if kept == "global" else "loss_local"
    np.testing.assert_allclose(loss, weight * metrics[name] + 0.1 * metrics["loss_attribute"], rtol=1e-6)
    assert (f"loss_{'local' if dropped == 'part' else 'global'}" not in metrics)
    old, new = (state["batch_stats"]["part_stage"]["layer4_0"]["bn1"]["mean"],
                new_state["batch_stats"]["part_stage"]["layer4_0"]["bn1"]["mean"])
    assert np.array_equal(old, new) == (kept == "global")  # the copy runs only with the part branch
    variables = jax.eval_shape(lambda: midattr.init_state(jax.random.key(0), config, batch))[0]
    assert (f"{kept}_classifier" in variables) and (f"{dropped}_classifier" not in variables)
    assert ("part_stage" in variables) == (kept == "part")


def test_gradients_reach_every_branch_and_only_the_assigned_parts(loss_and_grads):
  grads = jax.tree.map(np.asarray, loss_and_grads(_batch(), RNG)[1])
  for name in ("global_classifier", "part_classifier", "part_reduction", "part_stage"):
    for leaf in jax.tree.leaves(grads[name]):
      assert np.any(leaf != 0), name
  kernel = grads["attribute_classifiers"]["kernel"]  # [K, P, C, V]
  routing = midattr.routing_matrix(PARTS, 4)
  for k, size in enumerate(SIZES):
    touched = np.abs(kernel[k, :, :, :size]).sum(axis=(1, 2)) > 0
    np.testing.assert_array_equal(touched, routing[k], err_msg=f"attribute {k}")
    assert np.all(kernel[k, :, :, size:] == 0)
  backbone = jax.tree_util.tree_flatten_with_path(grads["backbone"])[0]
  zero = [jax.tree_util.keystr(path) for path, leaf in backbone if not np.any(leaf != 0)]
  assert not zero, zero


def test_pretrained_weights_fill_the_part_branch_too(model, tmp_path):
  config, params, state = model
  pretrained = jax.tree.map(lambda x: np.asarray(x) + 1.5, {"params": params["backbone"],
                                                             "batch_stats": state["batch_stats"]["backbone"]})
  path = tmp_path / "tiny_resnet18.npz"
  np.savez(path, **traverse_util.flatten_dict(pretrained, sep="/"), **{weights.FLAX_ARCH_KEY: np.array("resnet18")})
  train_state = state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params, method_state=state, opt_state=(),
                                     nonfinite_step=jnp.full((), -1, jnp.int32))
  for part_init in ("copy", "random"):
    config = _config(part_init=part_init)
    config.unlock()
    config.init_weights = str(path)
    loaded = state_lib.with_pretrained_backbone(train_state, config, midattr.METHOD)
    jax.tree.map(np.testing.assert_array_equal, loaded.params["backbone"], pretrained["params"])
    want = {k: v for k, v in pretrained["params"].items() if k.startswith("layer4_")}
    want_stats = {k: v for k, v in pretrained["batch_stats"].items() if k.startswith("layer4_")}
    if part_init == "random":
      want, want_stats = params["part_stage"], state["batch_stats"]["part_stage"]
    jax.tree.map(np.testing.assert_array_equal, loaded.params["part_stage"], want)
    jax.tree.map(np.testing.assert_array_equal, loaded.method_state["batch_stats"]["part_stage"], want_stats)
    jax.tree.map(np.testing.assert_array_equal, loaded.params["global_classifier"], params["global_classifier"])


def test_bad_config_values_name_the_key():
  for key, value in (("attribute_layer", "res2"), ("branches", "all"), ("descriptor", "mean"),
                     ("part_descriptor", "raw"), ("part_init", "imagenet")):
    with pytest.raises(ValueError, match=f"config.midattr.{key}"):
      midattr.make_model(_config(**{key: value}))
  with pytest.raises(ValueError, match="descriptor='part' needs the part branch"):
    midattr.make_model(_config(branches="global", descriptor="part"))
  with pytest.raises(ValueError, match="descriptor='fused' needs both"):
    midattr.make_model(_config(branches="global"))
  with pytest.raises(ValueError, match="names 2 attributes"):
    midattr.make_model(_config(attribute_parts=PARTS[:2]))
  with pytest.raises(ValueError, match="'top' has parts \\(4,\\)"):
    midattr.make_model(_config(attribute_parts=(("top", (4,)),) + PARTS[1:]))
  with pytest.raises(ValueError, match="dataset="):
    midattr_config.get_config("dataset=cub")
  with pytest.raises(ValueError, match="have no parts"):
    midattr_config.attribute_parts(("age", "tail"), {"age": (0,)})


def test_configs_route_every_dataset_attribute_by_table_1():
  market = midattr_config.get_config("dataset=market1501")
  assert [name for name, _ in market.midattr.attribute_parts] == list(market1501.ATTRIBUTE_NAMES)
  parts = dict(market.midattr.attribute_parts)
  assert parts["age"] == parts["gender"] == (0, 1, 2, 3) and parts["hat"] == parts["hair"] == (0,)
  assert parts["upred"] == parts["bag"] == parts["up"] == (0, 1)
  assert parts["downblue"] == parts["clothes"] == parts["down"] == (2, 3)
  assert (market.eval.protocol, market.eval.metric, market.image_size, market.batch_size) == ("reid", "euclidean",
                                                                                              224, 16)
  duke = midattr_config.get_config("dataset=dukemtmc_reid,attributes=res4,branches=part")
  assert [name for name, _ in duke.midattr.attribute_parts] == list(dukemtmc_reid.ATTRIBUTE_NAMES)
  assert dict(duke.midattr.attribute_parts)["shoes"] == (3,) and dict(duke.midattr.attribute_parts)["top"] == (0, 1)
  assert (duke.midattr.attribute_layer, duke.midattr.branches, duke.midattr.descriptor) == ("res4", "part", "part")
  synthetic_config = midattr_config.get_config()
  assert [name for name, _ in synthetic_config.midattr.attribute_parts] == list(synthetic.ATTRIBUTE_NAMES)


def test_synthetic_parts_hold_where_each_attribute_changes_the_pixels():
  """Renders each creature twice, differing in one attribute (same pose and noise draws), and
  checks that the parts SYNTHETIC_PARTS assigns hold >= 85% of the pixel change. leg_count and
  body_pattern draw extra random numbers (so the noise differs everywhere) and are left out."""
  table = synthetic.class_attributes()
  sizes = [len(v) for v in synthetic.ATTRIBUTE_VALUES]
  for a, name in enumerate(synthetic.ATTRIBUTE_NAMES):
    if name in ("leg_count", "body_pattern"):
      continue
    change = np.zeros(4)
    for i in range(12):
      row = table[i].copy()
      other = row.copy()
      other[a] = (row[a] + 1) % sizes[a]
      images = [synthetic.render(r, i % 6, 64, np.random.default_rng([9, i])).astype(np.float64) for r in (row, other)]
      change += np.abs(images[0] - images[1]).mean(axis=(1, 2)).reshape(4, 16).mean(axis=1)
    share = change[list(midattr_config.SYNTHETIC_PARTS[name])].sum() / change.sum()
    assert share >= 0.85, (name, change / change.sum())


def test_training_on_synthetic_reports_reid_metrics(tmp_path):
  config = midattr_config.get_config()
  config.midattr.part_dim = 6
  # 8 images per identity: 6 cameras leave 2 gallery images per identity.
  results, lines = train_tiny(config, tmp_path, **{"data.synthetic_images_per_class": 8})
  train = [line for line in lines if line["split"] == "train"]
  assert [line["step"] for line in train] == [2, 4]
  assert {"loss", "loss_global", "loss_local", "loss_attribute", "accuracy", "part_accuracy"} <= set(train[0])
  for split in ("val", "test"):
    (line,) = [line for line in lines if line["split"] == split]
    assert {"rank1", "rank5", "map", "minp", "attribute_accuracy", "attribute_accuracy/leg_length"} <= set(line)
  assert results["rank1"] == pytest.approx(lines[-1]["rank1"]) and 0.0 <= results["map"] <= 1.0
