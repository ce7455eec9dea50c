import numpy as np
import pytest

from jaxret.data import splits
from jaxret.data.subset import Subset


def test_reid_query_is_the_first_image_of_each_identity_camera_pair():
  rng = np.random.default_rng(0)
  ids, cams = rng.integers(0, 5, 60), rng.integers(0, 3, 60)
  query, gallery = splits.reid_query_gallery(ids, cams)
  seen, expected = set(), []
  for i, pair in enumerate(zip(ids, cams)):
    if pair not in seen:
      seen.add(pair)
      expected.append(i)
  np.testing.assert_array_equal(query, expected)
  np.testing.assert_array_equal(np.sort(np.concatenate([query, gallery])), np.arange(60))
  assert len(query) == len(seen)


def test_reid_split_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="identities"):
    splits.reid_query_gallery(np.zeros(3), np.zeros(4))


def test_closed_set_images_partition_each_class():
  train, val, test = splits.closed_set_images(10, 2, 3)
  assert (list(train), list(val), list(test)) == ([0, 1, 2, 3, 4], [5, 6], [7, 8, 9])
  with pytest.raises(ValueError, match="query_images_per_class=5"):
    splits.closed_set_images(10, 5, 5)


def test_subset_reads_the_chosen_examples_and_renumbers_index():
  source = [{"label": np.int32(10 + i), "index": np.int32(i)} for i in range(6)]
  subset = Subset(source, [4, 1])
  assert len(subset) == 2
  assert [int(subset[i]["label"]) for i in range(2)] == [14, 11]
  assert [int(subset[i]["index"]) for i in range(2)] == [0, 1]
  with pytest.raises(ValueError, match="Subset indices span 1..6"):
    Subset(source, [1, 6])


@pytest.mark.parametrize("dataset,train,test", [
    ("cub", range(100), range(100, 200)),
    ("cars196", range(98), range(98, 196)),
    ("fgvc_aircraft", range(50), range(50, 100)),
    ("stanford_online_products", range(11318), range(11318, 22634)),
])
def test_paper_open_set_splits(dataset, train, test):
  assert splits.paper_open_set_classes(dataset) == (train, test)


def test_open_set_split_rejects_empty_sides():
  with pytest.raises(ValueError, match="10 classes with 10 training classes"):
    splits.open_set_classes(10, 10)
  with pytest.raises(ValueError, match="no open-set split for dataset 'market1501'"):
    splits.paper_open_set_classes("market1501")


def test_carve_images_holds_out_the_last_images_of_each_class_but_never_all():
  labels = np.array([3, 5, 3, 3, 7, 5, 3])
  train, val = splits.carve_images(labels, 2)
  np.testing.assert_array_equal(val, [3, 5, 6])  # class 3: its last two; class 5: one of two; 7: none
  np.testing.assert_array_equal(train, [0, 1, 2, 4])
  assert len(splits.carve_images(labels, 0)[1]) == 0
