"""jaxret.data.device_augment against the host pipeline's transforms (jaxret.data.augment) at the
same draws, and jaxret.data.decoded: what is stored is the host pipeline's resize."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from configs import baseline
from jaxret.data import augment, decoded, device_augment, pipeline
from jaxret import mesh as mesh_lib


def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A smooth random image with some texture (resampling differences show on both)."""
  small = rng.uniform(0, 255, (4, 5, 3))
  ys, xs = np.linspace(0, 3, height)[:, None], np.linspace(0, 4, width)[None, :]
  smooth = small[np.floor(ys).astype(int), np.floor(xs).astype(int)]
  return np.clip(smooth + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


SIZES = [(37, 50), (60, 45), (48, 48), (30, 90), (90, 31), (41, 44), (55, 72), (33, 33)]


class Source:
  """Images of several sizes and aspects (two beyond 4:3), grain source protocol."""

  def __init__(self):
    rng = np.random.default_rng(0)
    self.examples = [{"image": _image(rng, h, w), "label": np.int32(i % 3), "index": np.int32(i)}
                     for i, (h, w) in enumerate(SIZES)]

  def __len__(self):
    return len(self.examples)

  def __getitem__(self, i):
    return self.examples[i]


def _config(augment_name: str, jitter: float = 0.4):
  config = baseline.get_config()
  config.image_size, config.data.augment, config.data.color_jitter = 24, augment_name, jitter
  config.data.resize_size = 0 if augment_name == "resize" else 28
  config.seed = 3
  return config


def _host_reference(stored: np.ndarray, params: dict, config) -> np.ndarray:
  """The host pipeline's operations at the device's draws: crop then PIL resize, flip, jitter."""
  top, left, h, w = (int(v) for v in params["box"])
  image = augment.resize(stored[top:top + h, left:left + w], pipeline.image_shape(config))
  if params["flip"]:
    image = image[:, ::-1]
  if config.data.color_jitter:
    image = augment.adjust_colors(image, np.asarray(params["order"]), np.asarray(params["factors"]))
  return image


@pytest.mark.parametrize("augment_name", ["resize", "random_crop", "random_resized_crop"])
def test_device_augmentation_equals_the_host_transforms_at_the_same_draws(augment_name):
  config = _config(augment_name)
  settings = device_augment.Settings.of(config)
  source = decoded.DecodedImages(Source(), config)
  positions = np.arange(len(source)) * 7 + 100
  keys = jax.vmap(lambda p: device_augment.example_key(settings.seed, p))(jnp.asarray(positions, jnp.uint32))
  params = jax.vmap(lambda k, hw: device_augment.augmentation_params(k, hw, settings))(keys, source.image_hw)
  levels = jax.jit(jax.vmap(lambda i, hw, k: device_augment.augment_example(i, hw, k, settings)))(
      source.images, source.image_hw, keys)
  flips = 0
  for i in range(len(source)):
    h, w = source.image_hw[i]
    drawn = jax.tree.map(lambda x: np.asarray(x[i]), params)
    top, left, ch, cw = drawn["box"]
    assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w  # inside the stored image
    host = _host_reference(source.images[i, :h, :w], drawn, config).astype(int)
    difference = np.abs(np.asarray(levels[i]).astype(int) - host)
    # a level where Pillow's pass order differs (module docstring), scaled by the jitter's factors
    assert difference.max() <= 3 and difference.mean() < 0.3, (augment_name, i, drawn)
    flips += int(drawn["flip"])
  assert 0 < flips < len(source)


def test_crop_resize_is_pillows_resize_of_the_crop():
  rng = np.random.default_rng(1)
  mismatched = {True: [], False: []}  # by whether Pillow 13 runs its horizontal pass first
  crop_resize = jax.jit(device_augment.crop_resize, static_argnums=2)
  for i in range(40):
    height, width = rng.integers(12, 60, 2)
    canvas = np.zeros((64, 64, 3), np.uint8)
    canvas[:height, :width] = rng.integers(0, 256, (height, width, 3))
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    h, w = rng.integers(1, height - top + 1), rng.integers(1, width - left + 1)
    shape = [(24, 24), (13, 41), (40, 9), (50, 50)][i % 4]  # enlarging, shrinking, both, neither
    host = augment.resize(canvas[top:top + h, left:left + w], shape).astype(int)
    device = np.asarray(crop_resize(jnp.asarray(canvas), jnp.asarray([top, left, h, w]), shape))
    difference = np.abs(device - host)
    assert difference.max() <= 1
    horizontal_first = h == shape[0] or w == shape[1] or not (h > shape[0] and w < shape[1])
    mismatched[horizontal_first].append((difference > 0).mean())
  assert np.mean(mismatched[True]) < 0.01 and np.mean(mismatched[False]) < 0.3


def test_without_resizing_the_device_crop_is_the_host_crop_exactly():
  config = _config("random_crop", jitter=0.0)
  config.data.random_flip = False
  settings = device_augment.Settings.of(config)
  source = decoded.DecodedImages(Source(), config)
  for i in range(len(source)):
    key = device_augment.example_key(settings.seed, jnp.uint32(i))
    top, left, h, w = np.asarray(device_augment.augmentation_params(key, source.image_hw[i], settings)["box"])
    levels = device_augment.augment_example(source.images[i], source.image_hw[i], key, settings)
    np.testing.assert_array_equal(np.asarray(levels), source.images[i, top:top + h, left:left + w])


@pytest.mark.parametrize("height,width", [(300, 400), (400, 150)])
def test_resized_crop_boxes_are_drawn_as_the_host_pipeline_draws_them(height, width):
  keys = jax.random.split(jax.random.key(0), 4000)
  device = np.asarray(jax.vmap(lambda k: device_augment.resized_crop_box(k, jnp.int32(height), jnp.int32(width)))(keys))
  rng = np.random.default_rng(0)
  host = np.asarray([augment.resized_crop_box(height, width, rng) for _ in range(4000)])
  for boxes in (device, host):
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
  quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
  for statistic in (lambda b: b[:, 2] * b[:, 3] / (height * width), lambda b: b[:, 3] / b[:, 2],
                    lambda b: (b[:, 0] + b[:, 2] / 2) / height, lambda b: (b[:, 1] + b[:, 3] / 2) / width):
    np.testing.assert_allclose(np.quantile(statistic(device), quantiles), np.quantile(statistic(host), quantiles),
                               atol=0.03)
  assert len({tuple(b) for b in device}) > 3800  # each key its own draw


def test_an_image_too_thin_for_every_try_gets_the_central_crop_of_the_clamped_ratio():
  thin = np.asarray(device_augment.resized_crop_box(jax.random.key(1), jnp.int32(10), jnp.int32(400)))
  np.testing.assert_array_equal(thin, augment.resized_crop_box(10, 400, np.random.default_rng(0)))
  np.testing.assert_array_equal(thin, [0, 194, 10, 13])


def test_the_same_batch_on_one_and_four_devices(tmp_path):
  config = _config("random_resized_crop")
  source = decoded.DecodedImages(Source(), config)
  batch = {"image": source.images, "image_hw": source.image_hw, "label": source.labels,
           "position": np.arange(len(source), dtype=np.int64) + 5}
  outputs = []
  for devices in (jax.devices()[:1], jax.devices()[:4]):
    mesh = Mesh(np.asarray(devices), (mesh_lib.DATA_AXIS,))
    augment_fn = device_augment.make_device_augment(config, mesh_lib.data_sharding(mesh))
    out = augment_fn(mesh_lib.global_batch(batch, mesh))
    assert set(out) == {"image", "label"} and out["image"].shape == (8, 24, 24, 3)
    outputs.append(np.asarray(out["image"]))
  np.testing.assert_array_equal(outputs[0], outputs[1])


def test_decoded_images_store_the_host_resize_and_the_other_fields():
  config = _config("random_crop")
  source = Source()
  stored = decoded.DecodedImages(source, config, num_threads=3)
  assert stored.images.shape == (8, 37, 37, 3)  # round(4 / 3 * 28)
  for i, example in enumerate(source.examples):
    h, w = stored.image_hw[i]
    assert min(h, w) == 28 and max(h, w) <= 37
    expected = augment.center_crop(augment.resize(example["image"], 28), (h, w))
    np.testing.assert_array_equal(stored[i]["image"][:h, :w], expected)
    assert not stored[i]["image"][h:].any() and not stored[i]["image"][:, w:].any()
    assert stored[i]["label"] == example["label"] and stored[i]["index"] == i
  assert tuple(stored.image_hw[3]) == (28, 37)  # 30 x 90: the longer side centre-cropped to 4:3


def test_device_stream_carries_each_examples_global_position():
  config = _config("resize")
  source = decoded.DecodedImages(Source(), config)
  batches = [next(iter(pipeline.train_dataset(source, train_classes=(0, 1, 2), global_batch=4, seed=1,
                                              process_index=p, process_count=2, on_device=True)))
             for p in range(2)]
  assert [b["position"].tolist() for b in batches] == [[0, 1], [2, 3]]  # the rows of global batch 0
  assert batches[0]["image"].dtype == np.uint8 and batches[0]["image"].shape == (2, 24, 24, 3)
