"""Fashion-MNIST (Xiao et al., 2017) from its IDX files: 70,000 28x28 grey images, 10 classes.

manual_dir layout (github.com/zalandoresearch/fashion-mnist `data/fashion`; Debian's
`dataset-fashion-mnist` package installs the same files in /usr/share/datasets/fashion-mnist)::

  train-images-idx3-ubyte.gz   train-labels-idx1-ubyte.gz    (60,000)
  t10k-images-idx3-ubyte.gz    t10k-labels-idx1-ubyte.gz     (10,000)

Uncompressed files (no `.gz`) are read too. Splits `train` and `test` (the t10k files). Images
are stored as lossless grey PNG and read back as RGB uint8 [28, 28, 3]; `label` is 0..9 in the
order of `CLASS_NAMES`. Stored under the TFDS name `jaxret_fashion_mnist`, so that it never
mixes with TFDS's own `fashion_mnist` (version 3.0.1) in a shared data_dir.
"""
import gzip
import io
import pathlib

import numpy as np
from PIL import Image

from jaxret.data.builders.builder import Builder, Example, Layout
from jaxret.data.builders.problems import BadExampleError, Problems

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def read_idx(path: pathlib.Path, magic: int, ndim: int) -> np.ndarray:
  """The uint8 array of an IDX file (gzip-compressed when the name ends in .gz).

  Raises:
    BadExampleError: naming the file when it is truncated or not an IDX file of `magic`.
  """
  try:
    data = path.read_bytes()
    if path.suffix == ".gz":
      data = gzip.decompress(data)
  except (OSError, EOFError) as e:
    raise BadExampleError(f"{path}: expected a gzip-compressed IDX file, cannot read it ({e})") from None
  header = 4 + 4 * ndim
  if len(data) < header:
    raise BadExampleError(f"{path}: expected an IDX header of {header} bytes, the file has {len(data)}")
  found, *shape = np.frombuffer(data[:header], ">i4").tolist()
  if found != magic:
    raise BadExampleError(f"{path}: expected IDX magic number {magic} (uint8, {ndim} dims), found {found}")
  if len(data) != header + int(np.prod(shape)):
    raise BadExampleError(f"{path}: expected {header} + {'x'.join(map(str, shape))} bytes for the header's shape "
                          f"{tuple(shape)}, the file has {len(data)} (truncated?)")
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def png(image: np.ndarray) -> bytes:
  """A uint8 `[H, W]` grey image as PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(image, mode="L").save(buffer, format="PNG")
  return buffer.getvalue()


class FashionMNIST(Builder):
  """Fashion-MNIST from local IDX files: train / test."""
  name = "jaxret_fashion_mnist"
  splits = ("train", "test")
  layout = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz (or the same without .gz) in one folder")

  def _file(self, manual_dir: pathlib.Path, stem: str) -> pathlib.Path:
    folders = (manual_dir, manual_dir / "fashion-mnist", manual_dir / "fashion")
    candidates = [folder / (stem + suffix) for folder in folders for suffix in (".gz", "")]
    for candidate in candidates:
      if candidate.exists():
        return candidate
    raise FileNotFoundError(f"manual_dir={manual_dir} does not hold {stem}(.gz): looked for "
                            f"{', '.join(map(str, candidates))}; expected {self.layout}")

  def read(self, manual_dir: pathlib.Path, problems: Problems) -> Layout:
    splits = {}
    for split, (image_stem, label_stem) in FILES.items():
      image_path, label_path = self._file(manual_dir, image_stem), self._file(manual_dir, label_stem)
      images, labels = read_idx(image_path, IMAGES_MAGIC, 3), read_idx(label_path, LABELS_MAGIC, 1)
      if len(images) != len(labels):
        raise BadExampleError(f"{label_path}: expected one label per image of {image_path} ({len(images)}), "
                              f"found {len(labels)}")
      examples = []
      for i, (image, label) in enumerate(zip(images, labels)):
        if label >= len(CLASS_NAMES):
          problems.report(
              f"{label_path}: item {i}: expected a label in 0..{len(CLASS_NAMES) - 1}, found {label}", split)
          continue
        examples.append(Example(image=png(image), filename=f"{image_path.name}#{i}", fields={"label": int(label)}))
      splits[split] = examples
    return Layout(splits=splits, metadata={"class_names": list(CLASS_NAMES)})
