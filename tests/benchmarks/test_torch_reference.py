"""benchmarks/torch_reference: each PyTorch method has jaxret's trainable parameters (count, shapes,
names) and BatchNorm statistics, a finite training loss whose gradient reaches every parameter and
which equals jaxret's loss_fn at the same parameters (every method but the baseline), and ops and loss
pieces that compute jaxret's numbers."""
import importlib
import os
import sys

import jax
import numpy as np
import pytest
import torch
from flax import traverse_util
from torch import nn

from jaxret import methods
from jaxret.backbones import get_backbone
from jaxret.data import synthetic
from jaxret.losses import binomial_deviance, consistency, hashing
from jaxret.methods import a3m as jax_a3m
from jaxret.ops import bilinear, crop_zoom, horizontal_pooling, local_views, random_walk, roi_align
from jaxret.weights.torchvision_names import torchvision_to_flax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
# pylint: disable=wrong-import-position
import torch_reference
from torch_reference import a2net, a3m, deml, vapnet
from torch_reference import crop_zoom as t_crop_zoom
from torch_reference import mobilenet_v2 as t_mobilenet_v2
from torch_reference import horizontal_pooling as t_pooling
from torch_reference import local_views as t_local_views
from torch_reference import random_walk as t_random_walk
from torch_reference import roi_align as t_roi_align
from torch_reference import resnet as t_resnet
# pylint: enable=wrong-import-position

BATCH = 8
NUM_CLASSES = 5
NUM_TRAIN_EXAMPLES = 40
SYNTHETIC_ATTRIBUTE_SIZES = tuple(len(values) for values in synthetic.ATTRIBUTE_VALUES)
# test case -> (method, image size, config values on top of the tiny size). DeML runs at 64 px so
# that its random walk has more than one node on res5 (and every DeML case walks on the same map
# sizes: see test_ops_compute_jaxret_numbers); A3M runs at 64 px so that its attention chooses
# among 4 res5 regions (its region BatchNorm has one feature per region).
CASES = {
    "baseline": ("baseline", 32, {}),
    "a3m": ("a3m", 64, {}),
    "a3m_batchnorm": ("a3m", 64, {"a3m.branch": "batchnorm_relu", "a3m.attention_norm": "batchnorm"}),
    "midattr": ("midattr", 64, {"midattr.dropout": 0.0}),  # the frameworks draw other dropout masks
    "midattr_res4": ("midattr", 32, {"midattr.attribute_layer": "res4", "midattr.part_init": "random"}),
    "a2net": ("a2net", 64, {}),
    "a2net_vanilla": ("a2net", 32, {"a2net.variant": "vanilla", "a2net.similarity": "paper", "a2net.gamma": 0.0}),
    "vapnet": ("vapnet", 32, {}),
    "vapnet_embedding_eq5": ("vapnet", 32, {"embedding_dim": 16, "vapnet.variant": "no_mean_encoders"}),
    "deml": ("deml", 64, {}),
    "deml_hinge": ("deml", 64, {"deml.adversary": "hinge", "deml.num_branches": 3, "deml.split": "res2"}),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread_without_onednn():
  """Tiny models on a shared 2-core machine: torch's second thread only waits (10x slower measured).
  oneDNN off: on x86 CPUs with AVX2 but no AVX-512, torch 2.13.0's oneDNN backward of a strided
  1x1 channels-last convolution with one thread corrupts the heap (the ResNet downsample
  Conv2d(4, 8, 1, stride=2) on an (8, 4, 16, 16) input aborts with "double free or corruption"),
  which killed the test process; torch's own convolution kernels compute the same numbers."""
  threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
  torch.set_num_threads(1)
  torch.backends.mkldnn.enabled = False
  yield
  torch.set_num_threads(threads)
  torch.backends.mkldnn.enabled = onednn


def tiny_config(method: str, image_size: int = 32, **overrides):
  """configs/<method>.py (synthetic) at backbone_width 0.0625, with the dataset keys the train loop
  fills; `overrides` by "section.key" name."""
  config = importlib.import_module(f"configs.{method}").get_config()
  values = {"backbone_width": 0.0625, "image_size": image_size, "batch_size": BATCH, "num_classes": NUM_CLASSES,
            "attribute_sizes": SYNTHETIC_ATTRIBUTE_SIZES, "num_train_examples": NUM_TRAIN_EXAMPLES, **overrides}
  for key, value in values.items():
    *sections, leaf = key.split(".")
    target = config
    for section in sections:
      target = target[section]
    target[leaf] = value
  return config


def numpy_batch(config, seed: int = 0) -> dict[str, np.ndarray]:
  """A jaxret-style batch: images, P x K labels (pairs), attributes with some unknown (-1), indices."""
  rng = np.random.default_rng(seed)
  size = config.image_size
  attributes = np.stack([rng.integers(0, n, BATCH) for n in SYNTHETIC_ATTRIBUTE_SIZES], axis=1)
  attributes[rng.random(attributes.shape) < 0.2] = -1
  return {"image": rng.normal(size=(BATCH, size, size, 3)).astype(np.float32),
          "label": (np.arange(BATCH) // 2 % NUM_CLASSES).astype(np.int32),
          "attributes": attributes.astype(np.int32),
          "index": rng.permutation(NUM_TRAIN_EXAMPLES)[:BATCH].astype(np.int32)}


def torch_path(name: str) -> tuple[str, ...]:
  """A torch module path as jaxret's Flax module path: "backbone.layer1.0.downsample.1" ->
  ("backbone", "layer1_0", "downsample_bn") (torchvision's names, jaxret/backbones/resnet.py)."""
  path = []
  for part in name.split(".") if name else []:
    if part.isdigit():
      path[-1] = {("downsample", "0"): "downsample_conv", ("downsample", "1"): "downsample_bn"}.get(
          (path[-1], part), f"{path[-1]}_{part}")
    else:
      path.append(part)
  return tuple(path)


def jaxret_variables(model: nn.Module) -> tuple[dict, dict]:
  """The torch model's parameters and BatchNorm statistics as jaxret's flat {path: array} "params"
  and "batch_stats" (Flax layouts; method-state buffers left out)."""
  params, batch_stats = {}, {}
  for module_name, module in model.named_modules():
    tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    for leaf, tensor in tensors:
      value = tensor.detach().numpy()
      if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        names = {"weight": (params, "scale"), "bias": (params, "bias"), "running_mean": (batch_stats, "mean"),
                 "running_var": (batch_stats, "var")}
        if leaf in names:
          target, leaf = names[leaf]
          target[(*torch_path(module_name), leaf)] = value
      elif isinstance(tensor, nn.Parameter):
        if isinstance(module, nn.Conv2d) and leaf == "weight":
          leaf, value = "kernel", value.transpose(2, 3, 1, 0)
        elif isinstance(module, nn.Linear) and leaf == "weight":
          leaf, value = "kernel", value.T
        params[(*torch_path(module_name), leaf)] = value
  return params, batch_stats


def jaxret_method_state(model: nn.Module, method: str, batch_stats) -> dict:
  """jaxret's method state from the torch model's buffers."""
  state = {"batch_stats": batch_stats}
  if method == "a2net":
    state["database"] = {"codes": model.database_codes.numpy(),
                         "labels": model.database_labels.numpy().astype(np.int32),
                         "outputs": model.database_outputs.numpy(), "in_query": model.database_in_query.numpy()}
  if method == "vapnet" and model.uses_mean_encoders:
    state["mean_encoders"] = {name: {"kernel": getattr(model, f"mean_{name}_weight").numpy().T,
                                     "bias": getattr(model, f"mean_{name}_bias").numpy()}
                              for name in ("local", "global")}
  return state


# The cases whose loss is also compared with jaxret's loss_fn at the same parameters (a jit compile
# each, 5-10 s).
SAME_LOSS_CASES = ("a3m", "a3m_batchnorm", "midattr", "a2net", "vapnet", "deml")


@pytest.mark.parametrize("case", list(CASES))
def test_parameters_loss_and_gradients_match_jaxret(case, monkeypatch):
  """Trainable parameters: jaxret's count, shapes (as a multiset, and by jaxret's module names);
  BatchNorm statistics under jaxret's names; a finite scalar loss (equal to jaxret's at the same
  parameters for SAME_LOSS_CASES) whose gradient reaches every parameter."""
  method_name, image_size, overrides = CASES[case]
  config = tiny_config(method_name, image_size, **overrides)
  batch = numpy_batch(config)
  torch.manual_seed(0)
  model = torch_reference.build(config)
  method = methods.get_method(method_name)
  params, batch_stats = jaxret_variables(model)
  expected_params, expected_state = jax.eval_shape(lambda: method.init_state(jax.random.key(0), config, batch))
  expected = {path: leaf.shape for path, leaf in traverse_util.flatten_dict(expected_params).items()}
  actual = {path: value.shape for path, value in params.items()}
  assert sum(np.prod(s) for s in actual.values()) == sum(np.prod(s) for s in expected.values())
  assert sorted(actual.values()) == sorted(expected.values())
  assert actual == expected
  assert set(batch_stats) == set(traverse_util.flatten_dict(expected_state["batch_stats"]))

  rng = jax.random.key(1)
  if method_name == "vapnet":  # jaxret's views: the patches its loss_fn draws from rng
    patches = np.array(local_views.sample_patches(rng, BATCH, config.vapnet.num_views, len(model.candidate_boxes)))
    monkeypatch.setattr(vapnet, "sample_patches", lambda *_: torch.from_numpy(patches).long())
  loss = model.loss(torch_reference.to_torch(batch))
  assert loss.ndim == 0 and torch.isfinite(loss)
  if case in SAME_LOSS_CASES:
    state = jaxret_method_state(model, method_name, traverse_util.unflatten_dict(batch_stats))
    expected_loss, _ = jax.jit(lambda p, s, b: method.loss_fn(p, s, b, rng, config))(
        traverse_util.unflatten_dict(params), state, batch)
    np.testing.assert_allclose(loss.item(), float(expected_loss), rtol=2e-5)
  loss.backward()
  missing = [name for name, p in model.named_parameters() if p.grad is None]
  assert not missing, f"no gradient reaches {missing}"
  model.after_step()


def test_to_torch_gives_channels_last_images_and_int64_labels():
  batch = numpy_batch(tiny_config("baseline"))
  out = torch_reference.to_torch(batch)
  assert out["image"].shape == (BATCH, 3, 32, 32)
  assert out["image"].is_contiguous(memory_format=torch.channels_last)
  np.testing.assert_array_equal(out["image"].permute(0, 2, 3, 1).numpy(), batch["image"])
  assert out["label"].dtype == torch.int64 and out["attributes"].dtype == torch.int64
  np.testing.assert_array_equal(out["attributes"].numpy(), batch["attributes"])
  with pytest.raises(ValueError, match=r"batch\['image'\] has shape \(8, 3, 32, 32\)"):
    torch_reference.to_torch({"image": np.zeros((8, 3, 32, 32), np.float32)})


def test_loss_names_a_missing_or_mis_sized_batch_key():
  config = tiny_config("a2net")
  model = torch_reference.build(config)
  batch = torch_reference.to_torch(numpy_batch(config))
  missing = r"torch_reference.a2net: .*expected \['image', 'label', 'index'\] \(missing \['index'\]\)"
  with pytest.raises(ValueError, match=missing):
    model.loss({k: v for k, v in batch.items() if k != "index"})
  with pytest.raises(ValueError, match=r"batch\['label'\] has 3 rows; expected 8"):
    model.loss({**batch, "label": batch["label"][:3]})


def test_build_names_an_unknown_method():
  config = tiny_config("baseline")
  config.method = "nope"
  with pytest.raises(ValueError, match="config.method='nope'"):
    torch_reference.build(config)


# trunk -> (the PyTorch reference, width multiplier). ResNet-50 only: ResNet-18's BasicBlocks are
# checked by the loss comparisons above.
TRUNKS = {"resnet50": (lambda width: t_resnet.resnet("resnet50", width), 0.0625),
          "mobilenet_v2": (t_mobilenet_v2.MobileNetV2, 0.5)}


@pytest.mark.parametrize("arch", list(TRUNKS))
def test_trunk_has_torchvision_names_and_computes_jaxret_stage_features(arch):
  make_trunk, width = TRUNKS[arch]
  torch.manual_seed(0)
  trunk = make_trunk(width).eval()
  with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode uses them
    for m in trunk.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5), m.bias.normal_(0.0, 0.1)
        m.running_mean.normal_(0.0, 0.1), m.running_var.uniform_(0.5, 1.5)
  images = np.random.default_rng(0).normal(size=(2, 33, 33, 3)).astype(np.float32)  # odd: floor formulas
  backbone = get_backbone(arch, width_multiplier=width)
  assert trunk.stage_channels() == backbone.stage_channels()
  target = jax.eval_shape(lambda: backbone.init(jax.random.key(0), images, train=False))
  state_dict = {k: v.numpy() for k, v in trunk.state_dict().items()}
  variables = torchvision_to_flax(state_dict, target, f"torch_reference {arch}")  # raises on any name/shape mismatch
  expected = jax.jit(lambda v, x: backbone.apply(v, x, train=False))(variables, images)
  with torch.no_grad():
    actual = trunk(torch_reference.to_torch({"image": images})["image"])
  assert sorted(actual) == sorted(expected) == ["res2", "res3", "res4", "res5"]
  for stage in actual:
    if arch.startswith("resnet"):
      assert actual[stage].shape[2] == t_resnet.stage_size(33, stage)
    np.testing.assert_allclose(actual[stage].permute(0, 2, 3, 1).numpy(), expected[stage], rtol=1e-4, atol=1e-4)


def nchw(x: np.ndarray) -> torch.Tensor:
  """[B, H, W, C] numpy -> [B, C, H, W] torch."""
  return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)


def test_ops_compute_jaxret_numbers():
  """RoIAlign, local-view crops, stripe pooling, the random walk and crop-zoom on random inputs
  (jaxret's side as one compiled function: eager, its many small ops each compile). The walk's
  layer and output sizes are the DeML case's (res4 4 x 4, res5 2 x 2, 64 px), whose resize
  matrices jaxret computes eagerly at trace time (~10 s to compile): once for both tests."""
  rng = np.random.default_rng(0)
  candidates = local_views.grid_patch_boxes(12, 16, (2, 4))
  np.testing.assert_array_equal(t_local_views.grid_patch_boxes(12, 16, (2, 4)).numpy(), candidates)
  x = {"features": rng.normal(size=(2, 5, 7, 3)), "boxes": rng.uniform(-4, 36, size=(2, 3, 4)),  # some past the edges
       "images": rng.normal(size=(2, 12, 16, 3)), "rows": rng.normal(size=(2, 7, 3, 5)),
       "map4": rng.normal(size=(2, 4, 4, 6)), "map5": rng.normal(size=(2, 2, 2, 8)),
       "large_images": rng.normal(size=(2, 64, 64, 3))}
  x = {k: v.astype(np.float32) for k, v in x.items()}
  x["patches"] = candidates[rng.integers(0, len(candidates), size=(2, 3))]

  @jax.jit
  def jaxret_ops(x):
    attention = random_walk.object_attention([x["map4"], x["map5"]], (64, 64), 10)
    box = crop_zoom.attention_box(attention)
    return {"roi": roi_align.roi_align(x["features"], x["boxes"], (3, 2), (5 / 32, 7 / 32), 2),
            "views": bilinear.crop_and_resize(x["images"], x["patches"], (12, 16)),
            "average": horizontal_pooling.horizontal_average_pool(x["rows"], 4),
            "max": horizontal_pooling.horizontal_max_pool(x["rows"], 4),
            "attention": attention, "box": box, "zoomed": crop_zoom.crop_and_zoom(x["large_images"], box, (64, 64))}

  expected = jaxret_ops(x)
  attention = t_random_walk.object_attention([nchw(x["map4"]), nchw(x["map5"])], (64, 64), 10)
  box = t_crop_zoom.attention_box(attention)
  actual = {
      "roi": t_roi_align.roi_align(nchw(x["features"]), torch.from_numpy(x["boxes"]), (3, 2), (5 / 32, 7 / 32), 2)
             .permute(0, 1, 3, 4, 2),
      "views": t_local_views.crop_and_resize(nchw(x["images"]), torch.from_numpy(x["patches"]).long(), (12, 16))
               .permute(0, 1, 3, 4, 2),
      "average": t_pooling.horizontal_average_pool(nchw(x["rows"]), 4),
      "max": t_pooling.horizontal_max_pool(nchw(x["rows"]), 4),
      "attention": attention, "box": box,
      "zoomed": t_crop_zoom.crop_and_zoom(nchw(x["large_images"]), box, (64, 64)).permute(0, 2, 3, 1)}
  for name, value in actual.items():
    np.testing.assert_allclose(value.numpy(), np.asarray(expected[name]), rtol=1e-4, atol=1e-5, err_msg=name)


def test_loss_pieces_compute_jaxret_numbers():
  """Attribute CE with unknown values, VAPNet's KL, DeML's binomial deviance, A2-Net's balanced S."""
  rng = np.random.default_rng(1)
  deml_config = importlib.import_module("configs.deml").get_config().deml
  attributes = rng.integers(-1, 4, size=(6, 3))
  attributes[:, 2] = -1  # an attribute no example knows: loss 0
  x = {"logits": rng.normal(size=(6, 3, 4)).astype(np.float32), "attributes": attributes,
       "target": rng.normal(size=(6, 5, 4)).astype(np.float32),
       "prediction": rng.normal(size=(6, 5, 4)).astype(np.float32),
       "learners": rng.normal(size=(6, 3, 5)).astype(np.float32), "labels": np.array([0, 0, 1, 1, 2, 2]),
       "database_labels": np.array([0, 1, -1, 2, 2, 0, 3, -1])}

  @jax.jit
  def jaxret_losses(x):
    deviance = lambda learner: binomial_deviance.binomial_deviance(
        learner, x["labels"], deml_config.alpha, deml_config.beta, deml_config.positive_cost, deml_config.negative_cost)
    return {"attribute_ce": jax_a3m.attribute_cross_entropy(x["logits"], x["attributes"]),
            "kl": consistency.softmax_kl(x["target"], x["prediction"]),
            "deviance": jax.vmap(deviance, in_axes=1)(x["learners"]),
            "dissimilar": hashing.balanced_dissimilarity(x["labels"], x["database_labels"], 4)}

  expected = jaxret_losses({k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in x.items()})
  t = {k: torch.from_numpy(v) for k, v in x.items()}
  actual = {"attribute_ce": a3m.attribute_cross_entropy(t["logits"], t["attributes"]),
            "kl": vapnet.softmax_kl(t["target"], t["prediction"]),
            "deviance": deml.binomial_deviance(t["learners"], t["labels"], deml_config),
            "dissimilar": a2net.balanced_dissimilarity(t["labels"], t["database_labels"], 4)}
  for name, value in actual.items():
    np.testing.assert_allclose(value.numpy(), np.asarray(expected[name]), rtol=1e-5, atol=1e-6, err_msg=name)


def test_vapnet_after_step_moves_the_mean_encoders_by_eq7():
  config = tiny_config("vapnet")
  model = torch_reference.build(config)
  mean = model.mean_local_weight.clone()
  with torch.no_grad():
    model.encoder_local.weight.add_(1.0)
  model.after_step()
  a = config.vapnet.ema_ratio
  torch.testing.assert_close(model.mean_local_weight, (1 - a) * mean + a * model.encoder_local.weight)


def test_a2net_after_step_records_the_batch_in_the_database():
  config = tiny_config("a2net")
  batch = numpy_batch(config)
  model = torch_reference.build(config)
  model.loss(torch_reference.to_torch(batch))
  assert (model.database_labels == -1).all()  # loss reads the state, after_step writes it
  model.after_step()
  index = torch.from_numpy(batch["index"]).long()
  np.testing.assert_array_equal(model.database_labels[index].numpy(), batch["label"])
  assert model.database_in_query.sum() == BATCH and model.database_in_query[index].all()
  assert (model.database_outputs[index].abs() > 0).all()
