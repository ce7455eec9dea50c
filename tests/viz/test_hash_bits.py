"""A2-Net per-bit galleries: the selection and order of each row against hand-made codes, then the
codes of a tiny A2-Net with random parameters (its forward pass compiled once, by the evaluators' Embedder), its
PNG, and the errors for another method's run, a bit out of range, codes that do not match the images."""
import numpy as np
import pytest
from PIL import Image

from configs import a2net as a2net_config
from jaxret.data import synthetic
from jaxret.methods import a2net
from jaxret.viz import hash_bits, image_grid
from tests.viz.conftest import random_init

BITS = 6


@pytest.fixture(scope="module")
def a2net_run():
  """(config, params, method_state, gallery source, the gallery's relaxed codes)."""
  gallery = synthetic.SyntheticSource(range(4), images_per_class=3, image_size=32)
  config = a2net_config.get_config(f"bits={BITS}")
  config.unlock()
  config.backbone_width = 0.0625
  config.image_size = 32
  config.a2net.transform_dim = 8
  config.num_classes = 4
  config.num_train_examples = len(gallery)
  config.eval.batch_size = 8  # two batches, the last one padded
  config.lock()
  params, state = random_init(a2net, config, 32)
  return config, params, state, gallery, hash_bits.gallery_codes(params, state, config, gallery)


def _coloured_images(n: int) -> np.ndarray:
  """Image i is the constant grey level 10 i."""
  return np.broadcast_to((10 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, 4, 4, 3))


def test_rows_hold_the_images_with_the_bit_on_most_confident_first():
  relaxed = np.array([[0.2, -0.9], [0.9, -0.1], [-0.5, 0.3], [0.5, -0.2], [0.0, -0.3]], np.float32)
  panels, row_titles, panel_titles = hash_bits.bit_gallery_panels(relaxed, _coloured_images(5), (0, 1), 3)
  assert panels.shape == (2, 3, 4, 4, 3)
  shown = np.round(panels[..., 0, 0, 0] * 255 / 10)  # the image index of each panel (NaN: empty)
  np.testing.assert_array_equal(shown[0], [1, 3, 0])  # bit 0 on for 1 (0.9), 3 (0.5), 0 (0.2), 4 (0.0)
  np.testing.assert_array_equal(shown[1, :1], [2])  # bit 1 on only for image 2
  assert np.isnan(panels[1, 1:]).all()
  assert row_titles == ["bit 0 (4 on)", "bit 1 (1 on)"]
  assert panel_titles == [["+0.90", "+0.50", "+0.20"], ["+0.30", "", ""]]


def test_gallery_codes_are_relaxed_codes_of_each_image(a2net_run):
  relaxed = a2net_run[-1]
  assert relaxed.shape == (12, BITS)
  assert np.all(np.abs(relaxed) < 1.0) and np.any(relaxed != 0.0)  # tanh(W x), not its sign
  assert len(np.unique(np.round(relaxed, 6), axis=0)) == 12  # one code per image, padding dropped


def test_write_bit_gallery_png(a2net_run, tmp_path):
  config, _, _, gallery, relaxed = a2net_run
  path = hash_bits.write_bit_gallery(relaxed, gallery, config, str(tmp_path / "bits.png"), bits=(0, 2, 5), per_bit=4)
  with Image.open(path) as png:
    pixels = np.asarray(png.convert("RGB"), np.float32)
  assert pixels.shape[1::-1] == image_grid.grid_pixels(3, 4)
  assert pixels.std() > 20.0, "blank figure"


def test_bad_inputs_are_refused(a2net_run, tmp_path):
  config, params, state, gallery, relaxed = a2net_run
  other = config.copy_and_resolve_references()
  other.unlock()
  other.method = "vapnet"
  with pytest.raises(ValueError, match="config.method='vapnet'; expected an A2-Net run"):
    hash_bits.gallery_codes(params, state, other, gallery)
  with pytest.raises(ValueError, match=f"bit={BITS}: expected 0 <= bit < {BITS}"):
    hash_bits.write_bit_gallery(relaxed, gallery, config, str(tmp_path / "x.png"), bits=(0, BITS))
  with pytest.raises(ValueError, match=r"codes of shape \(11, 6\) for 12 images"):
    hash_bits.bit_gallery_panels(relaxed[:-1], _coloured_images(12), (0,), 2)
