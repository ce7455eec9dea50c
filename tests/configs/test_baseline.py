"""configs/baseline.py: on the papers' datasets Baseline-1 is the method's network, input and
schedule (issue 18: it was a ResNet-18 at width 0.25 for every real dataset); the synthetic quick
start keeps its small settings."""
import pytest

from configs import a3m, baseline, deml, midattr, vapnet

# baseline option -> the method config it is compared with (configs/baseline.py's docstring).
COMPARED_WITH = {
    "market1501": (a3m, "market1501"), "cub_cls": (a3m, "cub_cls"), "compcars": (a3m, "compcars"),
    "cub": (a3m, "cub"), "cars196": (a3m, "cars196"), "dukemtmc_reid": (midattr, "dukemtmc_reid"),
    "aircraft": (vapnet, "aircraft"), "inshop": (vapnet, "inshop"), "sop": (deml, "sop"),
}
NETWORK_INPUT_SCHEDULE = (
    "dataset", "backbone", "backbone_width", "image_size", "image_height", "batch_size", "total_steps",
    "data.augment", "data.resize_size", "data.random_flip", "data.color_jitter", "data.val_classes",
    "optimizer.name", "optimizer.learning_rate", "optimizer.momentum", "optimizer.weight_decay",
    "optimizer.schedule", "optimizer.warmup_steps", "optimizer.decay_boundaries", "optimizer.decay_factor",
    "optimizer.decay_every", "eval.protocol", "eval.metric", "eval.ks")


def _value(config, key):
  for part in key.split("."):
    config = config[part]
  return config


@pytest.mark.parametrize("option", sorted(COMPARED_WITH))
def test_real_datasets_use_the_methods_network_input_and_schedule(option):
  module, method_option = COMPARED_WITH[option]
  got, want = baseline.get_config(f"dataset={option}"), module.get_config(f"dataset={method_option}")
  assert {key: _value(got, key) for key in NETWORK_INPUT_SCHEDULE} == {
      key: _value(want, key) for key in NETWORK_INPUT_SCHEDULE}
  assert got.backbone == "resnet50" and got.backbone_width == 1.0
  assert got.method == "baseline" and got.optimizer.lr_multipliers == ()
  assert got.embedding_dim == (want.get("embedding_dim", 0) or 512)


def test_synthetic_quick_start_and_errors():
  c = baseline.get_config()
  assert (c.dataset, c.backbone, c.backbone_width, c.image_size, c.embedding_dim, c.total_steps) == (
      "synthetic", "resnet18", 0.25, 64, 128, 600)
  assert (c.optimizer.learning_rate, c.optimizer.schedule, c.data.augment) == (0.05, "cosine", "resize")
  f = baseline.get_config("dataset=fashion_mnist")  # the ImageNet MobileNetV2, its pooled features at step 0
  assert (f.backbone, f.backbone_width, f.init_weights, f.embedding_dim, f.data.val_classes) == (
      "mobilenet_v2", 1.0, "imagenet", 0, 2)
  with pytest.raises(ValueError, match="dataset='food101'"):
    baseline.get_config("dataset=food101")
