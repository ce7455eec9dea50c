"""FGVC-Aircraft (Maji et al., 2013), variant level: 100 classes, 10,000 images.

manual_dir layout (fgvc-aircraft-2013b.tar.gz)::

  fgvc-aircraft-2013b/data/variants.txt                    one variant name per line (100)
  fgvc-aircraft-2013b/data/images_variant_train.txt        '<image id> <variant>' (3,334)
  fgvc-aircraft-2013b/data/images_variant_val.txt          (3,333)
  fgvc-aircraft-2013b/data/images_variant_test.txt         (3,333)
  fgvc-aircraft-2013b/data/images/<image id>.jpg

Splits `train`, `val`, `test`; `images_variant_trainval.txt` is their union, read it as
`load_split(..., "train+val")`. Variant names may contain spaces ("Cessna 172"). `label` is
the variant's line in variants.txt, 0-based. The published images carry a 20-pixel copyright
banner along the bottom: the original bytes are stored with a `crop` box (top, left, bottom,
right) that drops it, and `load_split` applies the crop when decoding.
"""
import pathlib

from jaxret.data.builders.annotation_table import expect_fields, read_table, require
from jaxret.data.builders.builder import Builder, Example, Layout, int32
from jaxret.data.builders.problems import Problems

BANNER_PIXELS = 20


class FGVCAircraft(Builder):
  """FGVC-Aircraft, 100 variants: train / val / test, banner cropped at read time."""
  name = "fgvc_aircraft"
  splits = ("train", "val", "test")
  EXTRA_FEATURES = {"crop": int32([4])}
  layout = ("fgvc-aircraft-2013b/data/ with variants.txt, images_variant_{train,val,test}.txt and "
            "images/<id>.jpg")

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("fgvc-aircraft-2013b/data", "data"), "variants.txt")
    variants = [line.strip() for line in (root / "variants.txt").read_text().splitlines() if line.strip()]
    label_of = {v: i for i, v in enumerate(variants)}

    def parse(fields):
      expect_fields(fields, "<image_id> <variant>")
      image_id, variant = fields
      if not image_id.isdigit():
        raise ValueError(f"expected a numeric image id, found {image_id!r}")
      if variant not in label_of:
        raise ValueError(f"expected a variant listed in {root / 'variants.txt'}, found {variant!r}")
      return image_id, label_of[variant]

    splits = {}
    for split in self.splits:
      table = read_table(require(root / f"images_variant_{split}.txt", self.layout), problems, parse,
                         maxsplit=1, split=split)
      splits[split] = [
          Example(image=root / "images" / f"{image_id}.jpg", filename=f"images/{image_id}.jpg",
                  fields={"label": label}, origin=f"{table.path}:{line}")
          for line, (image_id, label) in table.rows]
    return Layout(splits=splits, metadata={"class_names": variants, "banner_pixels": BANNER_PIXELS})

  def finish(self, fields: dict, height: int, width: int) -> dict:
    if height <= BANNER_PIXELS:
      raise ValueError(f"expected an image taller than its {BANNER_PIXELS}-pixel banner, found height {height}")
    return dict(fields, crop=[0, 0, height - BANNER_PIXELS, width])
