"""Attention overlays: the pixel pieces (overlay, box outlines) exactly, then each method's panels and
PNG on a tiny untrained model (A3M and DeML at 64 px, where res5 is 2 x 2; VAPNet at 32 px), and the
errors for another method's run, images of the wrong size, configs with nothing to show.

Each model gets random parameters once per module (`random_init`) and its forward pass is compiled
once (`model_outputs`); the `write_*` calls reuse that program.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import a3m as a3m_config
from configs import deml as deml_config
from configs import vapnet as vapnet_config
from jaxret.data import synthetic
from jaxret.methods import a3m, deml, vapnet
from jaxret.ops import crop_zoom
from jaxret.ops.bilinear import crop_and_resize
from jaxret.viz import attention, image_grid
from tests.viz.conftest import random_init


def _images(size: int, count: int = 3) -> np.ndarray:
  source = synthetic.SyntheticSource(range(count), images_per_class=1, image_size=size)
  return np.stack([source[i]["image"] for i in range(count)])


def _tiny(config, size: int, **values):
  config.unlock()
  config.backbone_width = 0.0625
  config.image_size = size
  config.num_classes = 3
  config.attribute_sizes = tuple(len(v) for v in synthetic.ATTRIBUTE_VALUES)
  for key, value in values.items():
    *sections, leaf = key.split(".")
    target = config
    for section in sections:
      target = target[section]
    target[leaf] = value
  config.lock()
  return config


def _init(method, config, size: int):
  batch = {"image": jnp.zeros((1, size, size, 3), jnp.float32)}
  return jax.jit(lambda: method.init_state(jax.random.key(0, impl="rbg"), config, batch))()


def _run(method, config, images, **extra):
  """(config, params, method_state, eval outputs on `images`): the outputs through `model_outputs`, whose
  compiled program the `write_*` calls of the tests then reuse."""
  params, state = random_init(method, config, config.image_size)
  return config, params, state, attention.model_outputs(params, state, config, images, **extra)


@pytest.fixture(scope="module")
def a3m_run():
  return _run(a3m, _tiny(a3m_config.get_config(), 64, **{"a3m.feature_dim": 16, "embedding_dim": 16}), _images(64))


@pytest.fixture(scope="module")
def deml_run():
  config = _tiny(deml_config.get_config("I=2,J=2"), 64, **{"embedding_dim": 16, "deml.adversary_dim": 8})
  return _run(deml, config, _images(64))


VAPNET_KEY = 3


@pytest.fixture(scope="module")
def vapnet_run():
  config = _tiny(vapnet_config.get_config("views=3"), 32, **{"vapnet.attribute_dim": 8, "vapnet.grids": (2, 4)})
  images = _images(32)
  views, boxes = vapnet.local_views(jax.random.key(VAPNET_KEY), jnp.asarray(image_grid.to_model_input(images)), config)
  return (*_run(vapnet, config, images, views=views, boxes=boxes), np.asarray(views), np.asarray(boxes))


def _check_png(path: str, rows: int, columns: int) -> np.ndarray:
  with Image.open(path) as png:
    pixels = np.asarray(png.convert("RGB"), np.float32)
  assert pixels.shape[1::-1] == image_grid.grid_pixels(rows, columns)
  assert pixels.std() > 20.0, "blank figure"
  return pixels


def test_overlay_blends_the_colour_map():
  images = np.full((2, 4, 4, 3), 0.2, np.float32)
  maps = np.zeros((2, 4, 4), np.float32)
  maps[1] = 1.0
  blended = attention.overlay(images, maps, opacity=0.5)
  np.testing.assert_allclose(blended[0], np.broadcast_to([0.1, 0.1, 0.35], (4, 4, 3)), atol=1e-6)  # jet(0): dark blue
  np.testing.assert_allclose(blended[1], np.broadcast_to([0.35, 0.1, 0.1], (4, 4, 3)), atol=1e-6)  # jet(1): dark red
  np.testing.assert_array_equal(attention.overlay(images, maps, opacity=0.0), images)


def test_stretch_maps_each_map_onto_unit_range():
  maps = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 3.0)])
  np.testing.assert_allclose(attention.stretch(maps), [[[0, 1 / 3], [2 / 3, 1]], [[0, 0], [0, 0]]])


def test_draw_boxes_colours_the_outline_only():
  images = np.zeros((1, 6, 6, 3), np.float32)
  boxed = image_grid.draw_boxes(images, np.array([[[1, 2, 5, 6]]]), np.array([[1.0, 0.5, 0.0]]))
  on = boxed[0, ..., 0] == 1.0
  expected = np.zeros((6, 6), bool)
  expected[1:5, 2:6] = True
  expected[2:4, 3:5] = False  # 1-pixel outline of rows 1-4, columns 2-5
  np.testing.assert_array_equal(on, expected)
  np.testing.assert_array_equal(boxed[0][on], np.tile([1.0, 0.5, 0.0], (on.sum(), 1)))


def test_a3m_panels_overlay_each_attribute_map(a3m_run, tmp_path):
  config, params, state, outputs = a3m_run
  images = _images(64)
  panels, titles, _ = attention.a3m_panels(outputs, images, synthetic.ATTRIBUTE_NAMES)
  k = len(synthetic.ATTRIBUTE_NAMES)
  assert panels.shape == (3, 2 + k, 64, 64, 3) and titles == ("image", "m_region", *synthetic.ATTRIBUTE_NAMES)
  shown = images / 255.0
  np.testing.assert_allclose(panels[:, 0], shown, atol=1e-6)
  assert np.abs(panels[:, 1:] - shown[:, None]).mean() > 0.05  # the overlays differ from the image
  # Column 2 + k is attribute k's map m_k, upsampled to the image: recover its colour from the blend.
  m_k = np.asarray(jax.image.resize(outputs["attention"][:, 5], (3, 64, 64), "linear"))
  colour = (panels[:, 2 + 5] - (1 - attention.OPACITY) * shown) / attention.OPACITY
  np.testing.assert_allclose(colour, attention.overlay(np.zeros_like(shown), m_k, 1.0), atol=1e-4)
  path = attention.write_a3m_attention(params, state, config, images, str(tmp_path / "sub" / "a3m.png"))
  _check_png(path, 3, 2 + k)


def test_deml_panels_box_the_attention_and_show_the_crop(deml_run, tmp_path):
  config, params, state, outputs = deml_run
  images = _images(64)
  panels, titles, _ = attention.deml_panels(outputs, images)
  assert panels.shape == (3, 3, 64, 64, 3) and titles == ("image", "scale 1: attention", "scale 2: input")
  assert np.abs(panels[:, 1] - images / 255.0).mean() > 0.05
  boxes = outputs["boxes"][:, 0]  # (top, left, bottom, right)
  for b, (top, left, _, _) in enumerate(np.ceil(boxes).astype(int)):
    np.testing.assert_allclose(panels[b, 1, top, left], 1.0)  # the white box's corner
  crops = crop_zoom.crop_and_zoom(jnp.asarray(images / 255.0, jnp.float32), jnp.asarray(boxes), (64, 64))
  np.testing.assert_allclose(panels[:, 2], crops, atol=1e-4)
  _check_png(attention.write_deml_attention(params, state, config, images, str(tmp_path / "deml.png")), 3, 3)


def test_vapnet_panels_box_each_view(vapnet_run, tmp_path):
  config, params, state, outputs, views, boxes = vapnet_run
  images = _images(32)
  panels, titles, panel_titles = attention.vapnet_panels(outputs, images, views, boxes)
  assert panels.shape == (3, 4, 32, 32, 3) and titles == ("image", "view 1", "view 2", "view 3")
  crops = np.asarray(crop_and_resize(jnp.asarray(images / 255.0, jnp.float32), jnp.asarray(boxes), (32, 32)))
  for j in range(3):
    colour = attention.BOX_COLOURS[j]
    np.testing.assert_allclose(panels[:, 1 + j, 0, 0], np.tile(colour, (3, 1)))  # the view's frame
    np.testing.assert_allclose(panels[:, 1 + j, 2:-2, 2:-2], crops[:, j, 2:-2, 2:-2], atol=1e-4)
  for b, (x1, y1, _, _) in enumerate(boxes[:, 2]):
    np.testing.assert_allclose(panels[b, 0, y1, x1], attention.BOX_COLOURS[2])  # the last box, on top
  cosines = [float(t.split()[-1]) for row in panel_titles for t in row[1:]]
  assert len(cosines) == 9 and all(-1.0 <= c <= 1.0 for c in cosines)
  path = attention.write_vapnet_views(params, state, config, images, str(tmp_path / "v.png"),
                                      jax.random.key(VAPNET_KEY))
  _check_png(path, 3, 4)


def test_another_methods_run_is_refused(a3m_run, deml_run, tmp_path):
  a3m_args, deml_args = (a3m_run[1], a3m_run[2], a3m_run[0]), (deml_run[1], deml_run[2], deml_run[0])
  path = str(tmp_path / "x.png")
  with pytest.raises(ValueError, match="config.method='deml'.*expected a a3m run"):
    attention.write_a3m_attention(*deml_args, _images(64), path)
  with pytest.raises(ValueError, match="config.method='a3m'.*expected a deml run"):
    attention.write_deml_attention(*a3m_args, _images(64), path)
  with pytest.raises(ValueError, match="config.method='a3m'.*expected a vapnet run"):
    attention.write_vapnet_views(*a3m_args, _images(64), path, jax.random.key(0))
  with pytest.raises(ValueError, match=r"outputs have no \['boxes'\]"):
    attention.deml_panels(a3m_run[3], _images(64))
  with pytest.raises(ValueError, match="params do not fit the model of config.method='a3m'"):
    attention.model_outputs(deml_run[1], deml_run[2], a3m_run[0], _images(64))


def test_images_of_the_wrong_size_or_type_are_refused(a3m_run):
  config, params, state, outputs = a3m_run
  with pytest.raises(ValueError, match=r"shape \(3, 32, 32, 3\); expected uint8 \[B, 64, 64, 3\]"):
    attention.write_a3m_attention(params, state, config, _images(32), "unused.png")
  with pytest.raises(ValueError, match="images of dtype float32"):
    attention.model_outputs(params, state, config, _images(64).astype(np.float32))
  with pytest.raises(ValueError, match="outputs of 3 images for 2 images"):
    attention.a3m_panels(outputs, _images(64, count=2))
  with pytest.raises(ValueError, match=r"attention maps of size \(64, 64\) for images of size \(32, 32\)"):
    attention.deml_panels({"attention": np.zeros((3, 1, 64, 64)), "boxes": np.zeros((3, 1, 4))}, _images(32))


def test_configs_without_attention_to_show_are_refused(deml_run):
  config, params, state, _ = deml_run
  one_scale = ml_collections.ConfigDict(config.to_dict())
  one_scale.deml.num_scales = 1
  with pytest.raises(ValueError, match="num_scales=1"):
    attention.write_deml_attention(params, state, one_scale, _images(64), "unused.png")
  baseline = _tiny(vapnet_config.get_config("variant=aux_only"), 32)
  with pytest.raises(ValueError, match="variant='aux_only'"):
    attention.write_vapnet_views(params, state, baseline, _images(32), "unused.png", jax.random.key(0))
