"""Tests for jaxret/data/synthetic.py: the procedural creatures dataset."""
import numpy as np
import pytest

from jaxret.data import synthetic


def _images(source: synthetic.SyntheticSource, indices) -> np.ndarray:
  """uint8 `[N, H, W, 3]` images of `source` at `indices`."""
  return np.stack([source[int(i)]["image"] for i in indices])


def test_same_seed_and_index_give_identical_bytes():
  a = synthetic.SyntheticSource(range(10), images_per_class=5, seed=3)
  b = synthetic.SyntheticSource(range(10), images_per_class=5, seed=3)
  for i in (0, 7, 49):
    assert a[i]["image"].tobytes() == b[i]["image"].tobytes()
  # An image depends on (seed, class, image index) only, not on the other classes of the source.
  subset = synthetic.SyntheticSource([7, 2], images_per_class=5, seed=3)
  assert subset[6]["image"].tobytes() == a[2 * 5 + 1]["image"].tobytes()
  assert int(subset[6]["label"]) == 2


def test_different_seed_changes_images_and_attribute_table():
  a = synthetic.SyntheticSource(range(4), images_per_class=3, seed=0)
  b = synthetic.SyntheticSource(range(4), images_per_class=3, seed=1)
  for i in range(len(a)):
    assert not np.array_equal(a[i]["image"], b[i]["image"])
  assert not np.array_equal(synthetic.class_attributes(200, 0), synthetic.class_attributes(200, 1))


def test_example_fields_shapes_and_dtypes():
  source = synthetic.SyntheticSource(range(100, 103), images_per_class=4)
  example = source[5]
  assert set(example) == {"image", "label", "attributes", "camera", "index"}
  assert example["image"].shape == (64, 64, 3) and example["image"].dtype == np.uint8
  assert example["attributes"].shape == (synthetic.NUM_ATTRIBUTES,)
  assert example["attributes"].dtype == np.int32
  for key in ("label", "camera", "index"):
    assert example[key].shape == () and example[key].dtype == np.int32, key
  assert 0 <= int(example["camera"]) < synthetic.NUM_CAMERAS


def test_default_sizes():
  source = synthetic.SyntheticSource(range(100))
  assert len(source) == 100 * 60
  assert synthetic.NUM_CLASSES == 200
  assert source.attribute_table.shape == (200, synthetic.NUM_ATTRIBUTES)


def test_label_index_and_attribute_layout():
  classes = [5, 17, 3]
  source = synthetic.SyntheticSource(classes, images_per_class=4, image_size=16, seed=2)
  table = synthetic.class_attributes(200, 2)
  assert len(source) == 12
  for i in range(len(source)):
    example = source[i]
    assert int(example["label"]) == classes[i // 4]
    assert int(example["index"]) == i
    np.testing.assert_array_equal(example["attributes"], table[classes[i // 4]])
    assert int(example["camera"]) == source.camera_table[classes[i // 4], i % 4]


def test_attribute_table_metadata_is_consistent():
  assert len(synthetic.ATTRIBUTE_NAMES) == len(synthetic.ATTRIBUTE_VALUES) == synthetic.NUM_ATTRIBUTES
  assert len(set(synthetic.ATTRIBUTE_NAMES)) == synthetic.NUM_ATTRIBUTES
  for part in ("head", "body", "wing", "tail", "leg"):
    assert any(name.startswith(part) for name in synthetic.ATTRIBUTE_NAMES), part
  for values in synthetic.ATTRIBUTE_VALUES:
    assert len(values) >= 2 and len(set(values)) == len(values)
  for name in synthetic.ATTRIBUTE_NAMES:  # the module docstring documents the whole table
    assert name in synthetic.__doc__


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_class_attribute_combinations_are_distinct_and_use_every_value(seed):
  table = synthetic.class_attributes(200, seed)
  assert table.shape == (200, synthetic.NUM_ATTRIBUTES) and table.dtype == np.int32
  assert len(np.unique(table, axis=0)) == 200
  for a, values in enumerate(synthetic.ATTRIBUTE_VALUES):
    assert set(table[:, a].tolist()) == set(range(len(values))), synthetic.ATTRIBUTE_NAMES[a]
  np.testing.assert_array_equal(table, synthetic.class_attributes(200, seed))


@pytest.mark.parametrize("seed", [0, 7])
def test_held_out_classes_are_described_by_training_attribute_values(seed):
  table = synthetic.class_attributes(200, seed)
  train, held_out = table[:100], table[100:]
  for a, values in enumerate(synthetic.ATTRIBUTE_VALUES):
    assert set(train[:, a].tolist()) == set(range(len(values))), synthetic.ATTRIBUTE_NAMES[a]
    assert set(held_out[:, a].tolist()) <= set(train[:, a].tolist())
  # Held-out classes are new combinations, and fine-grained: each shares attributes with a training class.
  train_rows = {tuple(row) for row in train.tolist()}
  assert not any(tuple(row) in train_rows for row in held_out.tolist())
  shared = (held_out[:, None, :] == train[None, :, :]).sum(-1).max(1)  # [100] with the closest training class
  assert shared.min() >= 4 and shared.mean() >= synthetic.NUM_ATTRIBUTES / 2


def test_every_identity_spans_at_least_two_cameras():
  table = synthetic.camera_table(200, 0)
  assert table.shape == (200, synthetic.NUM_CAMERAS)
  for row in table:
    assert sorted(row.tolist()) == list(range(synthetic.NUM_CAMERAS))
  assert len({tuple(row) for row in table.tolist()}) > 50  # the cycle differs between classes
  source = synthetic.SyntheticSource(range(30), images_per_class=2, image_size=8)
  cameras = np.array([int(source[i]["camera"]) for i in range(len(source))]).reshape(30, 2)
  assert np.all(cameras[:, 0] != cameras[:, 1])
  # With 60 images per class, every camera sees every identity equally often.
  source = synthetic.SyntheticSource(range(4), image_size=8)
  cameras = np.array([int(source[i]["camera"]) for i in range(len(source))]).reshape(4, 60)
  for row in cameras:
    assert np.bincount(row, minlength=synthetic.NUM_CAMERAS).tolist() == [10] * synthetic.NUM_CAMERAS


def test_camera_changes_background_statistics():
  source = synthetic.SyntheticSource(range(40), images_per_class=6, image_size=32)
  borders = {c: [] for c in range(synthetic.NUM_CAMERAS)}
  for i in range(len(source)):
    example = source[i]
    image = example["image"].astype(np.float32)
    ring = np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3),
                           image[:, :2].reshape(-1, 3), image[:, -2:].reshape(-1, 3)])
    borders[int(example["camera"])].append(ring.mean(0))
  means = np.stack([np.mean(borders[c], 0) for c in range(synthetic.NUM_CAMERAS)])  # [cameras, 3]
  spread = max(np.linalg.norm(np.std(borders[c], 0)) for c in range(synthetic.NUM_CAMERAS))
  distances = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(synthetic.NUM_CAMERAS, 1)]
  assert distances.min() > 25.0
  assert distances.min() > spread  # camera means are further apart than the images of one camera spread


@pytest.mark.parametrize("size", [32, 96])
def test_image_size_is_respected(size):
  image = synthetic.SyntheticSource([0], images_per_class=1, image_size=size)[0]["image"]
  assert image.shape == (size, size, 3)
  assert image.std() > 10.0  # drawn, not blank


def test_out_of_range_index_raises_index_error():
  source = synthetic.SyntheticSource(range(3), images_per_class=2, image_size=16)
  with pytest.raises(IndexError, match="index 6 is out of range for 6 examples"):
    source[6]
  with pytest.raises(IndexError, match="index -7 is out of range"):
    source[-7]
  assert source[-1]["image"].tobytes() == source[5]["image"].tobytes()
  assert int(source[np.int64(5)]["index"]) == 5


def test_invalid_arguments_are_rejected():
  with pytest.raises(ValueError, match=r"classes \[200\] are outside 0..199"):
    synthetic.SyntheticSource([0, 200])
  with pytest.raises(ValueError, match="images_per_class=0"):
    synthetic.SyntheticSource([0], images_per_class=0)
  with pytest.raises(TypeError):
    synthetic.SyntheticSource([0])[1.5]


def test_works_as_a_grain_source():
  grain = pytest.importorskip("grain")
  source = synthetic.SyntheticSource(range(2), images_per_class=3, image_size=16)
  batch = next(iter(grain.MapDataset.source(source).batch(4)))
  assert batch["image"].shape == (4, 16, 16, 3)
  np.testing.assert_array_equal(batch["label"], [0, 0, 0, 1])


def test_class_is_learnable_from_pixels_yet_images_vary():
  num_classes, per_class = 40, 24
  source = synthetic.SyntheticSource(range(100, 100 + num_classes), images_per_class=per_class, image_size=32)
  images = _images(source, range(len(source))).astype(np.float32)  # [N, 32, 32, 3]
  labels = np.repeat(np.arange(num_classes), per_class)
  train = np.tile(np.arange(per_class), num_classes) < per_class // 2

  def nearest_class_mean_accuracy(features: np.ndarray) -> float:
    means = np.stack([features[train & (labels == c)].mean(0) for c in range(num_classes)])
    distances = ((features[~train, None] - means[None]) ** 2).sum(-1)
    return float((distances.argmin(1) == labels[~train]).mean())

  chance = 1.0 / num_classes
  pixels = images.reshape(-1, 8, 4, 8, 4, 3).mean((2, 4))  # downsampled to 8x8
  pixels = (pixels - pixels.mean((1, 2), keepdims=True)).reshape(len(images), -1)
  pixel_accuracy = nearest_class_mean_accuracy(pixels)
  assert pixel_accuracy > 3 * chance
  # A single global colour does not give the class away: camera and clutter dominate it.
  colour_accuracy = nearest_class_mean_accuracy(images.mean((1, 2)))
  assert colour_accuracy < 0.5 * pixel_accuracy
  # Images of one class vary (pose, camera, clutter, noise): no two are alike.
  pairs = np.triu_indices(per_class, 1)
  differences = np.stack([np.abs(group[pairs[0]] - group[pairs[1]]).mean((1, 2, 3))
                          for group in images.reshape(num_classes, per_class, 32, 32, 3)])  # [classes, pairs]
  assert differences.min() > 3.0
  assert differences.mean() > 40.0
