"""DukeMTMC-reID (Zheng et al., ICCV 2017) with the 23 identity attributes of Lin et al.

manual_dir layout::

  DukeMTMC-reID/bounding_box_train/0001_c2_f0046182.jpg   (16,522 images, 702 ids)
  DukeMTMC-reID/query/...                                 (2,228)
  DukeMTMC-reID/bounding_box_test/...                     (17,661)
  duke_attribute.mat   (here, in DukeMTMC-attribute/, or in the dataset folder)

`0001_c2_f0046182.jpg`: identity 0001, camera 2, frame 0046182. Stored fields: `label`
(identity), `camera` (0..7), `frame`, `attributes` int32 [23] in the order of
`ATTRIBUTE_NAMES` (the .mat file's `train` field order). Values, 0-based: gender 0 male,
1 female; top 0 short upper-body clothing, 1 long; shoes 0 dark, 1 light; every other
attribute 0 no, 1 yes. See `reid_folders` for splits and labels.
"""
import re

from jaxret.data.builders.builder import int32
from jaxret.data.builders.reid_folders import ReidBuilder

ATTRIBUTE_NAMES = (
    "backpack", "bag", "handbag", "boots", "gender", "hat", "shoes", "top", "downblack",
    "downwhite", "downred", "downgray", "downblue", "downgreen", "downbrown", "upblack",
    "upwhite", "upred", "uppurple", "upgray", "upblue", "upgreen", "upbrown")
ATTRIBUTE_SIZES = (2,) * len(ATTRIBUTE_NAMES)


class DukeMTMCReid(ReidBuilder):
  """DukeMTMC-reID person re-ID: train / query / gallery, cameras, 23 identity attributes."""
  name = "dukemtmc_reid"
  folder_names = ("DukeMTMC-reID",)
  pattern = re.compile(r"(?P<identity>-1|\d{4})_c(?P<camera>\d)_f(?P<frame>\d{7})\.jpg")
  example_name = "0001_c2_f0046182.jpg"
  attribute_file = "duke_attribute.mat"
  attribute_root = "duke_attribute"
  attribute_folders = ("DukeMTMC-attribute", "Duke_Attribute")
  ATTRIBUTE_NAMES = ATTRIBUTE_NAMES
  ATTRIBUTE_SIZES = ATTRIBUTE_SIZES
  EXTRA_FEATURES = {"camera": int32(), "frame": int32(), "attributes": int32([len(ATTRIBUTE_NAMES)])}
  layout = ("DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/*.jpg and "
            "duke_attribute.mat (github.com/vana77/DukeMTMC-attribute) beside it")

  def fields_from_name(self, match: re.Match) -> dict:
    return {"label": int(match["identity"]), "camera": int(match["camera"]) - 1, "frame": int(match["frame"])}
