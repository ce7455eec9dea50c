"""Market-1501 (Zheng et al., ICCV 2015) with the 27 identity attributes of Lin et al.

manual_dir layout::

  Market-1501-v15.09.15/bounding_box_train/0002_c1s1_000451_03.jpg   (12,936 images, 751 ids)
  Market-1501-v15.09.15/query/...                                    (3,368)
  Market-1501-v15.09.15/bounding_box_test/...                        (19,732, with -1 junk, 0000 distractors)
  market_attribute.mat   (here, in Market-1501_Attribute/, or in the dataset folder)

`0002_c1s1_000451_03.jpg`: identity 0002, camera 1, sequence 1, frame 000451, box 03.
Stored fields: `label` (identity), `camera` (0..5), `sequence` (1..6), `frame`, `attributes`
int32 [27] in the order of `ATTRIBUTE_NAMES` (the .mat file's `train` field order). Values,
0-based: age 0 young, 1 teenager, 2 adult, 3 old; clothes 0 dress, 1 pants; down 0 long lower
body clothing, 1 short; up 0 long sleeve, 1 short sleeve; hair 0 short, 1 long; gender 0 male,
1 female; every other attribute 0 no, 1 yes. See `reid_folders` for splits and labels.
"""
import re

from jaxret.data.builders.builder import int32
from jaxret.data.builders.reid_folders import ReidBuilder

ATTRIBUTE_NAMES = (
    "age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown", "downgray",
    "downgreen", "downpink", "downpurple", "downwhite", "downyellow", "upblack", "upblue",
    "upgreen", "upgray", "uppurple", "upred", "upwhite", "upyellow", "clothes", "down", "up",
    "hair", "hat", "gender")
ATTRIBUTE_SIZES = tuple(4 if name == "age" else 2 for name in ATTRIBUTE_NAMES)


class Market1501(ReidBuilder):
  """Market-1501 person re-ID: train / query / gallery, cameras, 27 identity attributes."""
  name = "market1501"
  folder_names = ("Market-1501-v15.09.15", "Market-1501")
  pattern = re.compile(r"(?P<identity>-1|\d{4})_c(?P<camera>\d)s(?P<sequence>\d)_(?P<frame>\d{6})_\d{2}\.jpg")
  example_name = "0002_c1s1_000451_03.jpg"
  attribute_file = "market_attribute.mat"
  attribute_root = "market_attribute"
  attribute_folders = ("Market-1501_Attribute",)
  ATTRIBUTE_NAMES = ATTRIBUTE_NAMES
  ATTRIBUTE_SIZES = ATTRIBUTE_SIZES
  EXTRA_FEATURES = {"camera": int32(), "sequence": int32(), "frame": int32(),
                    "attributes": int32([len(ATTRIBUTE_NAMES)])}
  layout = ("Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/*.jpg and "
            "market_attribute.mat (github.com/vana77/Market-1501_Attribute) beside it")

  def fields_from_name(self, match: re.Match) -> dict:
    return {"label": int(match["identity"]), "camera": int(match["camera"]) - 1,
            "sequence": int(match["sequence"]), "frame": int(match["frame"])}
