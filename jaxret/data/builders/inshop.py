"""In-Shop Clothes Retrieval (DeepFashion, Liu et al., CVPR 2016): 52,712 images of 7,982 items.

manual_dir layout (the "In-shop Clothes Retrieval Benchmark" folder)::

  img/WOMEN/Dresses/id_00000002/02_1_front.jpg
  Eval/list_eval_partition.txt      (or list_eval_partition.txt beside img/)

list_eval_partition.txt: line 1 the number of images, line 2 the header
`image_name item_id evaluation_status`, then `<image_name> <item_id> <train|query|gallery>`.
Splits `train` (25,882 images, 3,997 items), `query` (14,218) and `gallery` (12,612); query
and gallery share their 3,985 items. `label` numbers all items 0..7,981 in item-id order;
`item` keeps the published number (id_00000002 -> 2).
"""
import pathlib

from jaxret.data.builders.annotation_table import expect_fields, read_table, to_int
from jaxret.data.builders.builder import Builder, Example, Layout, int32
from jaxret.data.builders.problems import Problems, where


class InShop(Builder):
  """In-Shop Clothes Retrieval: train / query / gallery items."""
  name = "inshop"
  splits = ("train", "query", "gallery")
  EXTRA_FEATURES = {"item": int32()}
  layout = "img/... and Eval/list_eval_partition.txt of the In-shop Clothes Retrieval Benchmark"

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    root = self.find_root(manual_dir, ("In-shop Clothes Retrieval Benchmark", "In-shop_Clothes_Retrieval_Benchmark",
                                       "inshop", "InShop"), "img")
    partition = next((p for p in (root / "Eval" / "list_eval_partition.txt", root / "list_eval_partition.txt")
                      if p.exists()), None)
    if partition is None:
      raise FileNotFoundError(f"{root / 'Eval' / 'list_eval_partition.txt'} does not exist: expected {self.layout}")

    def parse(fields):
      expect_fields(fields, "<image_name> <item_id> <evaluation_status>")
      image, item, status = fields
      if not item.startswith("id_"):
        raise ValueError(f"expected an item id like 'id_00000002', found {item!r}")
      if status not in self.splits:
        raise ValueError(f"expected evaluation_status in {self.splits}, found {status!r}")
      return image, to_int(item[3:], "the item number"), status

    with open(partition, "rb") as f:
      first = f.readline().strip()
    table = read_table(partition, problems, parse, skip_lines=2)
    if not first.isdigit() or int(first) != len(table.rows) + table.bad_lines:
      problems.report(f"{where(partition, 1)}: expected the number of images listed below "
                      f"({len(table.rows) + table.bad_lines}), found {first.decode(errors='replace')!r}")
    items = sorted({item for _, (_, item, _) in table.rows})
    label_of = {item: i for i, item in enumerate(items)}
    splits = {split: [] for split in self.splits}
    for line, (image, item, status) in table.rows:
      splits[status].append(Example(image=root / image, filename=image, fields={"label": label_of[item], "item": item},
                                    origin=where(partition, line)))
    return Layout(splits=splits, metadata={"items": len(items), "label": "item index in item-id order"})
