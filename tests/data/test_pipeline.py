import numpy as np
import pytest
from PIL import Image

from jaxret.data import pipeline


class _Source:
  """A random-access source of `n` tiny images; pixel values encode the index."""

  def __init__(self, n: int, classes=(7, 9, 11)):
    self.n = n
    self.classes = classes

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    if not 0 <= i < self.n:
      raise IndexError(i)
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = i % 256
    image[0, 0, 1] = 255  # marks the left edge, to see flips
    return {"image": image, "label": np.int32(self.classes[i % len(self.classes)]), "index": np.int32(i)}


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_processes_together_read_exactly_the_global_batches():
  source = _Source(50)
  kwargs = dict(train_classes=(7, 9, 11), global_batch=8, seed=3)
  single = _take(iter(pipeline.train_dataset(source, **kwargs)), 9)
  parts = [_take(iter(pipeline.train_dataset(source, process_index=p, process_count=2, **kwargs)), 9)
           for p in range(2)]
  for step in range(9):
    for key in ("image", "label", "index"):
      np.testing.assert_array_equal(np.concatenate([parts[0][step][key], parts[1][step][key]]), single[step][key])


def test_each_epoch_is_a_fresh_permutation_of_every_example():
  source = _Source(16)
  batches = _take(iter(pipeline.train_dataset(source, train_classes=(7, 9, 11), global_batch=4, seed=0)), 8)
  epoch1 = np.concatenate([b["index"] for b in batches[:4]])
  epoch2 = np.concatenate([b["index"] for b in batches[4:]])
  assert sorted(epoch1) == list(range(16)) and sorted(epoch2) == list(range(16))
  assert not np.array_equal(epoch1, epoch2)
  assert not np.array_equal(epoch1, np.arange(16))


def test_labels_are_remapped_and_images_normalised_and_flipped():
  source = _Source(64)
  batch = next(iter(pipeline.train_dataset(source, train_classes=(7, 9, 11), global_batch=64, seed=0)))
  index = batch["index"]
  np.testing.assert_array_equal(batch["label"], index % 3)
  assert batch["image"].dtype == np.float32
  expected_red = (index % 256 / 255.0 - pipeline.IMAGENET_MEAN[0]) / pipeline.IMAGENET_STD[0]
  np.testing.assert_allclose(batch["image"][:, 1, 1, 0], expected_red, rtol=1e-6)
  flipped = batch["image"][:, 0, -1, 1] > batch["image"][:, 0, 0, 1]
  assert 10 < flipped.sum() < 54  # about half flipped


def test_same_seed_same_batches_other_seed_other_batches():
  source = _Source(40)
  make = lambda seed: _take(iter(pipeline.train_dataset(source, train_classes=(7, 9, 11), global_batch=8, seed=seed)), 3)
  a, b, c = make(1), make(1), make(2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert any(not np.array_equal(x["index"], z["index"]) for x, z in zip(a, c))


def test_iterator_state_resumes_exactly():
  source = _Source(30)
  ds = pipeline.train_dataset(source, train_classes=(7, 9, 11), global_batch=4, seed=5)
  it = iter(ds)
  _take(it, 5)
  state = it.get_state()
  expected = _take(it, 6)
  resumed = iter(ds)
  resumed.set_state(state)
  for x, y in zip(expected, _take(resumed, 6)):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["index"], y["index"])


def test_eval_dataset_covers_every_example_once_and_masks_padding():
  source = _Source(21)
  for process_count in (1, 2):
    rows = []
    for p in range(process_count):
      ds = pipeline.eval_dataset(source, global_batch=8, process_index=p, process_count=process_count)
      rows.append([ds[i] for i in range(len(ds))])
    assert len(rows[0]) == 3  # ceil(21 / 8)
    batches = [{k: np.concatenate([r[i][k] for r in rows]) for k in ("index", "valid")} for i in range(3)]
    index = np.concatenate([b["index"] for b in batches])
    valid = np.concatenate([b["valid"] for b in batches])
    np.testing.assert_array_equal(index[valid], np.arange(21))
    assert valid.sum() == 21 and not valid[21:].any()


def test_global_batch_must_split_over_processes():
  with pytest.raises(ValueError, match="not divisible by 3 processes"):
    pipeline.train_dataset(_Source(10), train_classes=(7,), global_batch=8, seed=0, process_count=3)


def _pk_batches(source, seed=0, process_index=0, process_count=1, steps=20):
  ds = pipeline.train_dataset(source, train_classes=(7, 9, 11, 13, 15), global_batch=8, seed=seed,
                              classes_per_batch=2, process_index=process_index, process_count=process_count)
  return _take(iter(ds), steps)


def test_pk_sampling_gives_p_classes_with_k_images_each():
  source = _Source(53, classes=(7, 9, 11, 13, 15))  # class 15 has 10 images, K = 4
  batches = _pk_batches(source)
  for batch in batches:
    labels, counts = np.unique(batch["label"], return_counts=True)
    assert len(labels) == 2 and list(counts) == [4, 4]
    for label in labels:  # K distinct images when the class has at least K
      assert len(set(batch["index"][batch["label"] == label])) == 4
    np.testing.assert_array_equal(batch["label"], batch["index"] % 5)
  seen = np.concatenate([b["label"] for b in batches])
  assert set(seen) == {0, 1, 2, 3, 4}  # every class gets drawn
  again = _pk_batches(source)
  for x, y in zip(batches, again):
    np.testing.assert_array_equal(x["index"], y["index"])
  assert any(not np.array_equal(x["index"], y["index"]) for x, y in zip(batches, _pk_batches(source, seed=1)))


def test_pk_sampling_splits_over_processes_like_one_process():
  source = _Source(40, classes=(7, 9, 11, 13, 15))
  single = _pk_batches(source, steps=5)
  parts = [_pk_batches(source, process_index=p, process_count=2, steps=5) for p in range(2)]
  for step in range(5):
    np.testing.assert_array_equal(np.concatenate([parts[0][step]["index"], parts[1][step]["index"]]),
                                  single[step]["index"])


def test_pk_sampling_needs_enough_classes():
  with pytest.raises(ValueError, match="P=2 classes per batch.*1 <= P <= 1"):
    pipeline.train_dataset(_Source(10, classes=(7,)), train_classes=(7,), global_batch=8, seed=0,
                           classes_per_batch=2)


def test_eval_transform_center_crops_after_resizing_the_shorter_side():
  from configs import baseline
  config = baseline.get_config()
  config.image_size, config.data.augment, config.data.resize_size = 4, "random_crop", 8
  image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
  out = pipeline.eval_transform(config)(image)
  resized = np.asarray(Image.fromarray(image).resize((12, 8), Image.BILINEAR))
  np.testing.assert_array_equal(out, resized[2:6, 4:8])
  train = pipeline.train_transform(config)(image, np.random.default_rng(0))
  assert train.shape == (4, 4, 3)


def test_worker_processes_give_the_same_batches():
  source = _Source(40)
  kwargs = dict(train_classes=(7, 9, 11), global_batch=8, seed=4, transform=pipeline.train_transform(_small_config()))
  inline = _take(iter(pipeline.train_dataset(source, **kwargs)), 6)
  workers = _take(iter(pipeline.train_dataset(source, num_workers=2, **kwargs)), 6)
  for x, y in zip(inline, workers):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["index"], y["index"])


def _small_config():
  from configs import baseline
  config = baseline.get_config()
  config.image_size, config.data.color_jitter = 4, 0.3
  return config
