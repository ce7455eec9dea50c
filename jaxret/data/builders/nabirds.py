"""NABirds (Van Horn et al., CVPR 2015): 48,562 images of 555 North American bird categories.

manual_dir layout (nabirds.tar.gz)::

  nabirds/images.txt               '<image_id> <path under images/>', ids are UUIDs
  nabirds/image_class_labels.txt   '<image_id> <class_id>'
  nabirds/train_test_split.txt     '<image_id> <is_training_image>'
  nabirds/classes.txt              '<class_id> <class name>' (all 1,011 nodes of the hierarchy)
  nabirds/images/0817/<file>.jpg

Splits `train` (23,929) and `test` (24,633). Images are labelled with the 555 leaf
categories only; `label` numbers the class ids that label images, in ascending order, 0..554,
and `class_id` keeps the published id. metadata.json holds `class_ids` and `class_names` per label.
"""
import pathlib

from jaxret.data.builders import image_id_tables
from jaxret.data.builders.builder import Builder, Example, Layout, int32
from jaxret.data.builders.problems import Problems


class NABirds(Builder):
  """NABirds, 555 leaf categories: train / test."""
  name = "nabirds"
  splits = ("train", "test")
  EXTRA_FEATURES = {"class_id": int32()}
  layout = "nabirds/ with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt and images/"

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("nabirds",), "image_class_labels.txt")
    names = image_id_tables.read_classes(root / "classes.txt", problems, self.layout)
    entries = image_id_tables.read_images(root, problems, self.layout, names)
    class_ids = sorted({e.class_id for e in entries})
    label_of = {c: i for i, c in enumerate(class_ids)}
    splits = {"train": [], "test": []}
    for e in entries:
      splits["train" if e.is_train else "test"].append(Example(
          image=root / "images" / e.path, filename=f"images/{e.path}",
          fields={"label": label_of[e.class_id], "class_id": e.class_id}, origin=e.origin))
    metadata = {"class_ids": class_ids, "class_names": [names.get(c, "") for c in class_ids]}
    return Layout(splits=splits, metadata=metadata)
