"""A2-Net (jaxret/methods/a2net.py): the factored attention + phi_local against applying phi_local
to every A^c (.) T, the loss against NumPy Eq. 13 with the Table 2 switches, the database state
and its closed-form update, codes in {-1, +1}, config errors, and a short training run through
the loop reporting Hamming mAP.

One tiny model (64 px: res5 is 2 x 2) is initialised once per module; loss values are checked on
eager calls (cached per-op programs) and one gradient program is compiled.
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import a2net as a2net_config
from jaxret.data import datasets, pipeline
from jaxret.methods import a2net
from jaxret.ops import asymmetric_codes
from jaxret.training import config as config_lib, loop

BITS, NUM_CLASSES, NUM_IMAGES = 6, 4, 10


def _config(**overrides):
  config = a2net_config.get_config(f"bits={BITS}")
  config.unlock()
  config.backbone_width = 0.0625
  config.num_classes = NUM_CLASSES
  config.num_train_examples = NUM_IMAGES
  config.a2net.transform_dim = 4
  config.a2net.gamma = 0.0  # Eq. 13 as printed; ADSH's quantisation term is tested on its own
  config.a2net.similarity = "paper"
  config.a2net.update(overrides)
  config.lock()
  return config


def _batch():
  rng = np.random.default_rng(0)
  return {"image": jnp.asarray(rng.normal(size=(4, 64, 64, 3)), jnp.float32),
          "label": jnp.asarray([0, 1, 2, 1], jnp.int32), "index": jnp.asarray([3, 7, 0, 9], jnp.int32)}


@pytest.fixture(scope="module")
def model():
  config = _config()
  params, state = jax.jit(lambda: a2net.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()
  # A database half assigned: rows 0-5 have codes and labels, rows 6-9 were never seen.
  rng = np.random.default_rng(1)
  codes = np.zeros((NUM_IMAGES, BITS), np.float32)
  codes[:6] = rng.choice([-1.0, 1.0], size=(6, BITS))
  labels = np.array([2, 0, 1, 3, 1, 0, -1, -1, -1, -1], np.int32)
  state["database"] = {**state["database"], "codes": jnp.asarray(codes), "labels": jnp.asarray(labels)}
  return config, params, state


def test_factored_local_transform_equals_phi_local_on_every_attended_map():
  t = jnp.asarray(np.random.default_rng(2).normal(size=(2, 3, 3, 5)), jnp.float32)
  attention = jax.nn.sigmoid(jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 3, 4)), jnp.float32))
  net = a2net.TransformNet(features=6, depth=2)
  variables = net.init(jax.random.key(0, impl="rbg"), t)
  factored = net.apply(variables, t, attention)  # [B, C, H, W, D]
  assert factored.shape == (2, 4, 3, 3, 6)
  for c in range(4):  # Eqs. 2-3 literally: phi_local(A^c (.) T)
    np.testing.assert_allclose(np.asarray(factored[:, c]), np.asarray(net.apply(variables, t * attention[..., c:c + 1])),
                               rtol=1e-5, atol=1e-5)


def test_outputs_shapes_and_codes(model):
  config, params, state = model
  out = a2net.make_model(config).apply({"params": params, "batch_stats": state["batch_stats"]},
                                       _batch()["image"], train=False)
  d = (BITS + 1) * config.a2net.transform_dim  # C = k local features and the global one
  assert out["features"].shape == (4, d) and out["code"].shape == (4, BITS)
  assert out["attention"].shape == (4, BITS, 2, 2)
  np.testing.assert_allclose(np.asarray(out["code"]), np.tanh(np.asarray(out["features"]) @ np.asarray(params["encoder"]).T),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(out["reconstruction"]), np.asarray(out["code"]) @ np.asarray(params["encoder"]),
                             rtol=1e-5, atol=1e-6)
  embedding = a2net.embed_fn(params, state, _batch()["image"], config)
  codes = np.asarray(a2net.binary_codes(embedding))
  assert set(np.unique(codes)) <= {-1, 1}
  np.testing.assert_array_equal(codes, np.where(np.asarray(out["code"]) >= 0, 1, -1))


def _eq13_numpy(x, w, v, labels, db_codes, db_labels, lam, alpha, beta, terms, similarity):
  reconstruction = np.sum((x.T - w.T @ v.T) ** 2) + lam * np.sum((w @ x.T - v.T) ** 2)
  decorrelation = np.sum((v.T @ v - len(v) * np.eye(w.shape[0])) ** 2)
  known = db_labels >= 0
  same = labels[:, None] == db_labels[None, :]
  dissimilar = -1.0
  if similarity == "balanced":  # ADSH's code: -(similar pairs / dissimilar pairs), known rows only
    dissimilar = -same[:, known].sum() / (~same[:, known]).sum()
  s = np.where(same, 1.0, dissimilar)
  asymmetric = np.sum(((v @ db_codes.T - w.shape[0] * s) ** 2)[:, known])
  use_reconstruction, use_decorrelation = terms
  return (use_reconstruction * reconstruction + use_decorrelation * alpha * decorrelation + beta * asymmetric)


@pytest.mark.parametrize("variant,terms,similarity", [("a2net", (1, 1), "paper"), ("reconstruction", (1, 0), "paper"),
                                                      ("attention", (0, 0), "paper"), ("a2net", (1, 1), "balanced")])
def test_loss_is_eq13_over_n_m_with_the_ablation_switches(model, variant, terms, similarity):
  config, params, state = model
  config = _config(variant=variant, similarity=similarity)
  batch = _batch()
  loss, (metrics, new_state) = a2net.loss_fn(params, state, batch, None, config)
  out = a2net.make_model(config).apply({"params": params, "batch_stats": state["batch_stats"]}, batch["image"],
                                       train=True, mutable=["batch_stats"])[0]
  db = new_state["database"]
  n, m = 4, NUM_IMAGES
  want = _eq13_numpy(np.asarray(out["features"], np.float64), np.asarray(params["encoder"], np.float64),
                     np.asarray(out["code"], np.float64), np.asarray(batch["label"]),
                     np.asarray(state["database"]["codes"]), np.asarray(db["labels"]),
                     1.0, 1.0 / (n * BITS), 12.0 / BITS, terms, similarity)
  np.testing.assert_allclose(float(loss), want / (n * m), rtol=1e-4)
  # The batch's labels, outputs and membership of Omega are recorded at their "index" rows.
  labels = np.asarray(db["labels"])
  np.testing.assert_array_equal(labels[[3, 7, 0, 9]], [0, 1, 2, 1])
  np.testing.assert_array_equal(labels[[1, 2, 4, 5, 6, 8]], [0, 1, 1, 0, -1, -1])
  np.testing.assert_allclose(np.asarray(db["outputs"])[[3, 7, 0, 9]], np.asarray(out["code"]), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.flatnonzero(np.asarray(db["in_query"])), [0, 3, 7, 9])


def test_vanilla_backbone_is_adsh_on_pooled_features(model):
  config = _config(variant="vanilla")
  params, state = jax.jit(lambda: a2net.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()
  assert "transform_local" not in params and "attention_kernel" not in params
  assert params["encoder"].shape == (BITS, 8 * config.backbone_width * 64)  # GAP(res5) of a ResNet-18
  codes = np.asarray(state["database"]["codes"])  # database_init="random": uniform {-1, +1}
  assert codes.shape == (NUM_IMAGES, BITS) and set(np.unique(codes)) == {-1.0, 1.0}
  np.testing.assert_array_equal(np.asarray(a2net.init_database(NUM_IMAGES, BITS)["codes"]), 0.0)  # "zeros"
  state["database"] = model[2]["database"]
  loss, _ = a2net.loss_fn(params, state, _batch(), None, config)
  out = a2net.make_model(config).apply({"params": params, "batch_stats": state["batch_stats"]}, _batch()["image"],
                                       train=True, mutable=["batch_stats"])[0]
  db_labels = np.asarray(state["database"]["labels"]).copy()
  db_labels[[3, 7, 0, 9]] = [0, 1, 2, 1]
  want = _eq13_numpy(np.asarray(out["features"]), np.asarray(params["encoder"]), np.asarray(out["code"], np.float64),
                     np.asarray(_batch()["label"]), np.asarray(state["database"]["codes"]), db_labels,
                     1.0, 0.0, 12.0 / BITS, (0, 0), "paper")
  np.testing.assert_allclose(float(loss), want / (4 * NUM_IMAGES), rtol=1e-4)


def test_gradients_reach_every_parameter_and_gamma_adds_the_quantization_term(model):
  config, params, state = model
  grad = jax.jit(jax.grad(lambda p, s, b: a2net.loss_fn(p, s, b, None, config)[0]))(params, state, _batch())
  for path, g in jax.tree_util.tree_leaves_with_path(grad):
    assert float(jnp.max(jnp.abs(g))) > 0, jax.tree_util.keystr(path)
  with_gamma = a2net.loss_fn(params, state, _batch(), None, _config(gamma=2.0))[0]
  without = a2net.loss_fn(params, state, _batch(), None, config)[0]
  codes = np.asarray(a2net.make_model(config).apply({"params": params, "batch_stats": state["batch_stats"]},
                                                    _batch()["image"], train=True, mutable=["batch_stats"])[0]["code"])
  own = np.asarray(state["database"]["codes"])[[3, 7, 0, 9]]
  beta = 12.0 / BITS  # beta weighs the quantisation term too (SEMICON's ADSH_Loss)
  np.testing.assert_allclose(float(with_gamma - without), beta * 2.0 * np.sum((own - codes) ** 2) / (4 * NUM_IMAGES),
                             rtol=1e-3)


def test_network_step_and_code_update_minimise_one_objective(model):
  """As a function of Z, the network's loss is beta / (n m) times the objective the closed-form Z
  update minimises (pair + gamma quant, over the batch as Omega): compared at two Z."""
  config, params, state = model
  config = _config(gamma=200.0)
  z1 = np.asarray(state["database"]["codes"])
  z2 = z1.copy()
  z2[[3, 0, 1]] *= -1  # two of the batch's own rows (quantisation) and another known row
  z2[0, :2] = 1.0
  losses, objectives = [], []
  for z in (z1, z2):
    s = {**state, "database": {**state["database"], "codes": jnp.asarray(z)}}
    loss, (_, new) = a2net.loss_fn(params, s, _batch(), None, config)
    db = new["database"]
    losses.append(float(loss))
    objectives.append(float(asymmetric_codes.code_objective(
        jnp.asarray(z), db["outputs"], db["in_query"], db["labels"], float(BITS), 200.0)))
  beta = 12.0 / BITS
  np.testing.assert_allclose(losses[1] - losses[0], beta * (objectives[1] - objectives[0]) / (4 * NUM_IMAGES),
                             rtol=1e-4)


def test_update_state_assigns_codes_to_seen_images_and_starts_a_new_omega(model):
  config, params, state = model
  _, (_, seen) = a2net.loss_fn(params, state, _batch(), None, config)
  updated = a2net.update_state(params, seen, None, config)["database"]
  codes = np.asarray(updated["codes"])
  known = np.asarray(seen["database"]["labels"]) >= 0
  assert set(np.unique(codes[known])) <= {-1.0, 1.0}
  np.testing.assert_array_equal(codes[~known], 0.0)  # never-seen images keep Z = 0
  assert not np.asarray(updated["in_query"]).any()


def test_encoder_is_initialised_with_its_fan_in_d_not_k():
  """W `[k, d]` maps d features to k bits: LeCun init, variance 1 / d (Flax's default fan-in axis
  for this orientation gives 1 / k, and tanh(W x) started saturated on ImageNet features)."""
  config = _config(variant="vanilla")
  params, _ = jax.jit(lambda: a2net.init_state(jax.random.key(0, impl="rbg"), config, _batch()))()
  k, d = params["encoder"].shape
  assert d > 4 * k  # 1 / d and 1 / k far apart
  np.testing.assert_allclose(float(jnp.std(params["encoder"])), 1 / np.sqrt(d), rtol=0.15)


def test_images_with_bit_on_lists_the_on_images_most_confident_first():
  relaxed = np.array([[0.2, -0.9], [-0.1, 0.5], [0.9, 0.1], [0.0, -0.2]])
  np.testing.assert_array_equal(a2net.images_with_bit_on(relaxed, 0), [2, 0, 3])
  np.testing.assert_array_equal(a2net.images_with_bit_on(relaxed, 1, limit=1), [1])
  with pytest.raises(ValueError, match="bit=2"):
    a2net.images_with_bit_on(relaxed, 2)


def test_mean_abs_bit_correlation():
  a = np.array([1.0, -1.0, 1.0, -1.0])
  b = np.array([1.0, 1.0, -1.0, -1.0])
  assert float(a2net.mean_abs_bit_correlation(jnp.stack([a, b], 1))) == 0.0
  assert float(a2net.mean_abs_bit_correlation(jnp.stack([a, -a, b], 1))) == pytest.approx(1.0 / 3.0)
  collapsed = jnp.ones((4, 3))  # every image the same code: fully correlated
  assert float(a2net.mean_abs_bit_correlation(collapsed)) == 1.0


def test_bad_config_values_name_the_key():
  with pytest.raises(ValueError, match="config.a2net.variant='full'"):
    a2net.make_model(_config(variant="full"))
  with pytest.raises(ValueError, match="config.a2net.database_init='ones'"):
    a2net.make_model(_config(database_init="ones"))
  with pytest.raises(ValueError, match="config.a2net.similarity='soft'"):
    a2net.make_model(_config(similarity="soft"))
  with pytest.raises(ValueError, match="config.a2net.gamma"):
    a2net.make_model(_config(gamma=-1.0))
  with pytest.raises(ValueError, match="bits='x'"):
    a2net_config.get_config("bits=x")
  with pytest.raises(ValueError, match="dataset='cars'"):
    a2net_config.get_config("dataset=cars")
  config = _config()
  config.unlock()
  config.num_train_examples = 0
  with pytest.raises(ValueError, match="config.num_train_examples=0"):
    a2net.init_state(jax.random.key(0), config, _batch())


def test_paper_configs():
  for dataset in a2net_config.DATASETS:  # ADSH's and SEMICON's balanced S everywhere; "paper" is the option
    assert a2net_config.get_config(f"dataset={dataset}").a2net.similarity == "balanced"
  cub = a2net_config.get_config("dataset=cub,bits=48")
  # 60 outer iterations of 3 epochs (ADSH) over 2,000 images, batch 16
  assert (cub.a2net.bits, cub.batch_size, cub.state_update_every, cub.total_steps) == (48, 16, 375, 22500)
  assert (cub.data.subset_size, cub.data.subset_epochs) == (2000, 3)
  assert cub.optimizer.decay_boundaries == (18750,) and cub.eval.protocol == "hashing"
  vegfru = a2net_config.get_config("dataset=vegfru,bits=12")
  assert (vegfru.state_update_every, vegfru.total_steps, vegfru.optimizer.decay_boundaries) == (750, 52500, (45000,))


def test_train_batches_carry_the_position_of_each_image_in_the_training_set():
  config = _config()
  config.unlock()
  config.data.synthetic_images_per_class = 4
  config.data.val_images_per_class = 1
  config.data.query_images_per_class = 1
  config.image_size = 32
  data = datasets.load(config)
  batch = next(iter(pipeline.train_dataset(data.train, train_classes=data.train_classes, global_batch=8, seed=0,
                                           transform=pipeline.train_transform(config))))
  lookup = {c: i for i, c in enumerate(data.train_classes)}
  for index, label in zip(batch["index"], batch["label"]):
    assert 0 <= index < len(data.train) and lookup[int(data.train[int(index)]["label"])] == label


class _IndexSource:
  """Tiny training set for the stream: example i has label i % 4 and "index" i."""

  def __len__(self):
    return 50

  def __getitem__(self, i):
    return {"image": np.zeros((4, 4, 3), np.uint8), "label": np.int32(i % 4), "index": np.int32(i)}


def test_each_omega_index_is_read_subset_epochs_times_between_code_updates():
  config = a2net_config.get_config("dataset=synthetic")
  assert (config.data.subset_size, config.data.subset_epochs) == (640, 3)
  assert config.state_update_every * config.batch_size == 640 * 3  # an update after every outer iteration
  config.unlock()
  config.batch_size, config.data.subset_size, config.state_update_every = 6, 20, 10
  size, epochs, steps = config.data.subset_size, config.data.subset_epochs, config.state_update_every
  make = lambda: iter(pipeline.train_dataset(_IndexSource(), train_classes=range(4), global_batch=6, seed=1,
                                             transform=lambda image, rng: image, subset_size=size, subset_epochs=epochs))
  stream = make()
  batches = [next(stream)["index"] for _ in range(2 * steps)]
  omegas = []
  for t in range(2):  # the images read between two calls of update_state
    read = np.concatenate(batches[t * steps:(t + 1) * steps])
    omega, counts = np.unique(read, return_counts=True)
    assert len(omega) == size and (counts == epochs).all()
    passes = read.reshape(epochs, size)
    assert all(set(p) == set(omega) for p in passes) and not (passes[0] == passes[1]).all()  # reshuffled
    omegas.append(omega)
  assert set(omegas[0]) != set(omegas[1])  # a new Omega each outer iteration
  resumed = make()  # checkpoint-resumable: the iterator's state is its position
  for _ in range(7):
    next(resumed)
  state = resumed.get_state()
  again = make()
  again.set_state(state)
  np.testing.assert_array_equal(next(again)["index"], batches[7])
  config.state_update_every = 9
  with pytest.raises(ValueError, match="config.state_update_every=9"):
    config_lib.validate(config)


def test_short_training_run_reports_hamming_map(tmp_path):
  config = a2net_config.get_config("dataset=synthetic,bits=8")
  config.unlock()
  config.backbone_width = 0.0625
  config.a2net.transform_dim = 4
  config.image_size = 32
  config.batch_size = 8
  config.total_steps = 4
  config.state_update_every = 2
  config.data.subset_size = 8  # two outer iterations of 2 passes over 8 images
  config.data.subset_epochs = 2
  config.eval_every = 0
  config.checkpoint_every = 4
  config.eval.batch_size = 200
  config.data.synthetic_images_per_class = 3  # 200 classes: 400 database images, 200 queries
  config.data.val_images_per_class = 0  # no validation split: one evaluation, at the end
  config.data.query_images_per_class = 1
  config.lock()
  results = loop.train(config, str(tmp_path))
  assert 0.0 < results["map"] <= 1.0 and 0.0 < results["map_tie_aware"] <= 1.0  # against Z
  assert 0.0 < results["reencoded/map"] <= 1.0  # against the network's codes of the database
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    train_rows = [r for r in map(json.loads, f) if r.get("split") == "train"]
  assert train_rows and "asymmetric" in train_rows[-1]
