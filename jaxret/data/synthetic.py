"""Synthetic creatures: a procedural fine-grained dataset with attributes, identities and cameras.

The project's default dataset: no download, rendered on the fly (about 1 ms per 64x64 image
on one CPU core), and every pixel a pure function of `(seed, class id, image index)`.

Generator
---------
A *class* is a fixed combination of part attributes, one value for each attribute in the
table below, drawn by `class_attributes(num_classes, seed)`. Each attribute's column is a
concatenation of random permutations of its values, so every aligned block of `len(values)`
classes uses every value: the first 100 classes (the default training half) use every value of
every attribute, and the held-out classes are described by attribute values seen in training. Rows are redrawn
until all combinations are distinct. Classes therefore share most of their attributes and
differ in a few parts: the task is fine-grained.

An *image* of class `c` with index `j` draws everything else from
`numpy.random.default_rng([1, seed, c, j])`:

- camera: `camera_table(num_classes, seed)[c, j % NUM_CAMERAS]`, a random cycle over the
  cameras per class, so images 0..5 of every class are seen by six different cameras and any
  class with 2 or more images spans at least 2 cameras;
- pose: rotation in [-30, 30] degrees, left/right mirroring, scale in [0.8, 1.15], position
  jitter of up to 10% of the image side, per-image articulation (head tilt, wing flap, tail
  swing, every leg's swing), a per-part colour jitter and spot positions;
- background (per camera): a two-colour gradient, clutter of the camera's kind (grass, pebbles,
  stars, tiles, branches, clouds) and 0-2 distractor blobs in creature colours;
- illumination (per camera): brightness and a per-channel colour cast, an image-level brightness
  jitter, and uniform pixel noise.

Parts are drawn with PIL `ImageDraw` polygons at twice the output size and box-downsampled,
then lit and noised with numpy. For re-identification, identity = class and `camera` is the
camera id; the default protocol trains on classes 0..99 and holds out 100..199. A class's
images do not depend on which other classes a source holds.

Attribute table (`ATTRIBUTE_NAMES[a]`: `ATTRIBUTE_VALUES[a]`)
-------------------------------------------------------------
==============  =========================================================
head_colour     red, orange, yellow, green, teal, blue, purple, pink
head_shape      round, square, beaked, crested
head_size       small, large
body_colour     red, orange, yellow, green, teal, blue, purple, pink
body_shape      oval, round, boxy, pear
body_pattern    plain, stripes, spots, belly
body_size       small, medium, large (body length; other parts keep their size)
wing_colour     red, orange, yellow, green, teal, blue, purple, pink
wing_shape      round, pointed, long
tail_shape      none, short, long, fan, forked
leg_count       two, four, six
leg_length      short, long
==============  =========================================================

Cameras (`NUM_CAMERAS` = 6): meadow, desert, night, lab, forest, snow.
"""
from collections.abc import Sequence
import dataclasses
import operator

import numpy as np
from PIL import Image, ImageDraw

NUM_CLASSES = 200
COLOURS = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
ATTRIBUTE_NAMES = (
    "head_colour", "head_shape", "head_size",
    "body_colour", "body_shape", "body_pattern", "body_size",
    "wing_colour", "wing_shape",
    "tail_shape", "leg_count", "leg_length")
ATTRIBUTE_VALUES = (
    COLOURS, ("round", "square", "beaked", "crested"), ("small", "large"),
    COLOURS, ("oval", "round", "boxy", "pear"), ("plain", "stripes", "spots", "belly"),
    ("small", "medium", "large"),
    COLOURS, ("round", "pointed", "long"),
    ("none", "short", "long", "fan", "forked"), ("two", "four", "six"), ("short", "long"))
NUM_ATTRIBUTES = len(ATTRIBUTE_NAMES)

# Streams keep the seed sequences of the table, the camera order and the images apart.
_IMAGE_STREAM, _CAMERA_STREAM, _TABLE_STREAM = 1, 2, 3
(_HEAD_COLOUR, _HEAD_SHAPE, _HEAD_SIZE, _BODY_COLOUR, _BODY_SHAPE, _BODY_PATTERN, _BODY_SIZE,
 _WING_COLOUR, _WING_SHAPE, _TAIL_SHAPE, _LEG_COUNT, _LEG_LENGTH) = range(NUM_ATTRIBUTES)

_PALETTE = np.array([
    (215, 45, 40), (240, 135, 30), (240, 215, 45), (60, 165, 55),
    (30, 170, 165), (45, 85, 215), (140, 55, 185), (245, 130, 185)], np.float32)
_OUTLINE = (25, 22, 20)
_LEG = (70, 60, 50)
_BEAK = (75, 60, 40)
_CREAM = (245, 235, 205)


@dataclasses.dataclass(frozen=True)
class _Camera:
  """A camera's background and illumination style."""
  name: str
  top: tuple[int, int, int]  # background colour at the top edge
  bottom: tuple[int, int, int]  # ... and at the bottom edge
  clutter: tuple[tuple[int, int, int], ...]
  kind: str  # clutter kind: grass, pebbles, stars, tiles, branches, clouds
  gain: tuple[float, float, float]  # per-channel illumination (brightness x colour cast)
  noise: float  # pixel noise standard deviation, in 0..255 units


_CAMERAS = (
    _Camera("meadow", (150, 190, 215), (95, 145, 70), ((70, 120, 45), (125, 165, 85)), "grass",
            (1.0, 1.0, 1.0), 4.0),
    _Camera("desert", (225, 205, 165), (190, 160, 110), ((160, 130, 90), (205, 185, 145), (130, 105, 75)),
            "pebbles", (1.08, 1.0, 0.82), 4.0),
    _Camera("night", (25, 30, 60), (50, 55, 80), ((110, 110, 150), (70, 75, 105)), "stars",
            (0.72, 0.78, 0.98), 9.0),
    _Camera("lab", (175, 175, 170), (160, 160, 155), ((135, 135, 130),), "tiles", (1.0, 1.03, 0.94), 3.0),
    _Camera("forest", (60, 85, 50), (85, 65, 45), ((50, 38, 28), (95, 115, 60)), "branches",
            (0.88, 0.98, 0.8), 6.0),
    _Camera("snow", (205, 215, 230), (240, 240, 245), ((190, 200, 220), (225, 230, 240)), "clouds",
            (1.04, 1.06, 1.14), 3.0),
)
NUM_CAMERAS = len(_CAMERAS)
CAMERA_NAMES = tuple(c.name for c in _CAMERAS)

_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))], axis=1)
_BODY_X = -np.cos(np.linspace(0, np.pi, 15))  # [-1, 1], denser at the ends


def class_attributes(num_classes: int = NUM_CLASSES, seed: int = 0) -> np.ndarray:
  """The attribute table: int32 `[num_classes, NUM_ATTRIBUTES]`, all rows distinct.

  Column `a` concatenates random permutations of `range(len(ATTRIBUTE_VALUES[a]))`, so every
  aligned block of `len(ATTRIBUTE_VALUES[a])` classes uses each value of attribute `a` once.
  """
  sizes = [len(v) for v in ATTRIBUTE_VALUES]
  if not 0 < num_classes <= int(np.prod(sizes, dtype=np.float64)):
    raise ValueError(f"num_classes={num_classes}: expected 1..{int(np.prod(sizes, dtype=np.float64))}")
  rng = np.random.default_rng([_TABLE_STREAM, seed, num_classes])
  while True:
    columns = []
    for n in sizes:
      blocks = -(-num_classes // n)
      columns.append(np.concatenate([rng.permutation(n) for _ in range(blocks)])[:num_classes])
    table = np.stack(columns, axis=1).astype(np.int32)
    if len(np.unique(table, axis=0)) == num_classes:
      return table


def camera_table(num_classes: int = NUM_CLASSES, seed: int = 0) -> np.ndarray:
  """Each class's camera cycle: int32 `[num_classes, NUM_CAMERAS]`, every row a permutation.

  Image `j` of class `c` is seen by camera `table[c, j % NUM_CAMERAS]`, so any two images of a
  class with indices closer than `NUM_CAMERAS` come from different cameras. Row `c` does not
  depend on `num_classes`.
  """
  keys = np.random.default_rng([_CAMERA_STREAM, seed]).random((num_classes, NUM_CAMERAS))
  return np.argsort(keys, axis=1).astype(np.int32)


def _rotation(angle: float) -> np.ndarray:
  """`[2, 2]` counter-clockwise rotation by `angle` radians (y up)."""
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s], [s, c]])


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
  """An ellipse as a `[20, 2]` polygon, rotated by `angle` about its centre."""
  points = _CIRCLE * (rx, ry)
  if angle:
    points = points @ _rotation(angle).T
  return points + (cx, cy)


# Part outlines in creature units (body half-length about 1), facing +x.
_FAN_TAIL = [_ellipse(-0.5 * np.cos(f), 0.5 * np.sin(f), 0.55, 0.14, -f)
             for f in np.radians([-30, 0, 30, 60])]
_FORKED_TAIL = [np.array([[0.1, 0.1], [-0.9, 0.0], [0.1, -0.1]]) @ _rotation(f).T
                for f in np.radians([-28, 28])]
_SHORT_TAIL = [np.array([[0.15, 0.22], [-0.5, 0.05], [0.15, -0.18]])]
_U = np.linspace(0, 1, 8)[:, None]
_SPINE = np.concatenate([-1.5 * _U, 0.35 * _U ** 2], axis=1)  # a curling tail, tapering to its tip
_HALF_WIDTH = (0, 1) * (0.14 * (1 - _U) + 0.03)
_LONG_TAIL = [np.concatenate([_SPINE + _HALF_WIDTH, (_SPINE - _HALF_WIDTH)[::-1]])]
_TAILS = (None, _SHORT_TAIL, _LONG_TAIL, _FAN_TAIL, _FORKED_TAIL)
_WINGS = (_ellipse(-0.4, 0.05, 0.6, 0.38), np.array([[0.2, 0.15], [-0.35, 0.4], [-1.3, 0.0], [-0.35, -0.22]]),
          _ellipse(-0.8, 0.0, 1.05, 0.22))
_SQUARE = np.sign(_CIRCLE) * np.abs(_CIRCLE) ** 0.5 * 0.92  # a superellipse of radius 0.92
_CREST = [np.array([[dx - 0.18, 0.5], [dx - 0.45 - 0.1 * k, 1.55 - 0.15 * k], [dx + 0.18, 0.65]])
          for k, dx in enumerate((-0.55, -0.15, 0.25))]
_BEAK_SHAPE = np.array([[0.55, 0.35], [1.75, -0.05], [0.55, -0.4]])
_LEG_WIDTH = 0.14


def _leg_shape(length: float) -> np.ndarray:
  """A leg with its foot pointing forward, hanging from the hip at the origin: a `[6, 2]` polygon."""
  w = _LEG_WIDTH / 2
  return np.array([[-w, 0.1], [w, 0.1], [w, 0.05 - length], [0.22, 0.05 - length], [0.22, -0.07 - length],
                   [-w, -0.07 - length]])


def _body_profile(shape: int, a: float, x: np.ndarray) -> np.ndarray:
  """Half-height of the body at `x` in [-a, a] (the body is symmetric about y = 0)."""
  u = np.clip(x / a, -1.0, 1.0)
  if shape == 0:  # oval
    return 0.55 * a * np.sqrt(1 - u * u)
  if shape == 1:  # round
    return 0.8 * a * np.sqrt(1 - u * u)
  if shape == 2:  # boxy: a superellipse
    return 0.55 * a * (1 - u ** 4) ** 0.25
  return 0.72 * a * np.sqrt(1 - u * u) * (0.72 - 0.34 * u)  # pear: heavy at the back


def _shade(colour: np.ndarray) -> tuple[int, int, int]:
  """A contrasting tone of `colour` for stripes and spots: darker, or lighter for dark colours."""
  luma = colour @ np.array([0.299, 0.587, 0.114], np.float32)
  shade = colour * 0.45 if luma > 100 else colour + (255 - colour) * 0.6
  return tuple(int(v) for v in shade)


def _draw_background(draw: ImageDraw.ImageDraw, camera: _Camera, size: int, rng: np.random.Generator) -> None:
  """Clutter of the camera's kind plus 0-2 creature-coloured distractor blobs, on a `size`^2 canvas."""
  s = size
  kind = camera.kind
  colours = [camera.clutter[k] for k in rng.integers(len(camera.clutter), size=24)]
  thin = max(1, s // 64)
  if kind == "grass":
    blades = rng.uniform((0, 0.5, 0.08, -0.08), (1, 1, 0.25, 0.08), (rng.integers(10, 20), 4)) * s
    for (x, y, h, lean), fill in zip(blades, colours):
      draw.line((x, y, x + lean, y - h), fill=fill, width=thin)
  elif kind == "pebbles":
    pebbles = rng.uniform((0, 0.3, 0.02), (1, 1, 0.07), (rng.integers(5, 12), 3)) * s
    for (x, y, r), fill in zip(pebbles, colours):
      draw.ellipse((x - r, y - 0.6 * r, x + r, y + 0.6 * r), fill=fill)
  elif kind == "stars":
    stars = rng.uniform((0, 0, 0.006), (1, 1, 0.02), (rng.integers(8, 20), 3)) * s
    for (x, y, r), fill in zip(stars, colours):
      draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
  elif kind == "tiles":
    step = s / rng.uniform(3.0, 5.0)
    x0, y0 = rng.uniform(0, step, size=2)
    for k in range(7):
      draw.line((x0 + k * step, 0, x0 + k * step, s), fill=camera.clutter[0], width=thin)
      draw.line((0, y0 + k * step, s, y0 + k * step), fill=camera.clutter[0], width=thin)
  elif kind == "branches":
    branches = rng.uniform((0, 0, 0.4 * s, 0.015 * s, 0), (s, s, s, 0.04 * s, np.pi), (rng.integers(2, 5), 5))
    for (x, y, length, width, angle), fill in zip(branches, colours):
      end = (x + length * np.cos(angle), y + length * np.sin(angle))
      draw.line((x, y, *end), fill=fill, width=max(1, int(width)))
  else:  # clouds
    clouds = rng.uniform((0, 0, 0.08), (1, 1, 0.18), (rng.integers(2, 5), 3)) * s
    for (x, y, r), fill in zip(clouds, colours):
      draw.ellipse((x - r, y - 0.5 * r, x + r, y + 0.5 * r), fill=fill)
  background = np.array(camera.top, np.float32)
  for x, y, r, aspect, angle, colour in rng.uniform(
      (0, 0, 0.03, 0.3, 0, 0), (s, s, 0.08 * s, 0.8, np.pi, len(_PALETTE)), (rng.integers(0, 3), 6)):
    fill = 0.6 * _PALETTE[int(colour)] + 0.4 * background  # a distractor in a creature colour
    draw.polygon(_ellipse(x, y, r, r * aspect, angle).ravel().tolist(), fill=tuple(int(v) for v in fill))


def render(attributes: Sequence[int], camera: int, image_size: int, rng: np.random.Generator) -> np.ndarray:
  """Renders one creature with `attributes` (one value per `ATTRIBUTE_NAMES`) under `camera`.

  Returns uint8 `[image_size, image_size, 3]`; all randomness comes from `rng`.
  """
  att = [int(v) for v in attributes]
  cam = _CAMERAS[camera]
  s = 2 * image_size  # drawn at twice the size, then box-downsampled

  # Background: a vertical gradient, then clutter.
  image = Image.fromarray(np.array([[cam.top], [cam.bottom]], np.uint8)).resize((s, s), Image.BILINEAR)
  draw = ImageDraw.Draw(image)
  _draw_background(draw, cam, s, rng)

  # Pose: creature units (y up) -> canvas pixels (y down).
  scale, angle, flip, dx, dy, tail_swing, tilt, flap = rng.uniform(
      (0.8, -30, 0, -0.1, -0.1, 2, -15, 0), (1.15, 30, 1, 0.1, 0.1, 38, 15, 36))
  ppu = s * 0.21 * scale  # pixels per creature unit
  mirror = -1.0 if flip < 0.5 else 1.0
  matrix = ppu * np.diag([1.0, -1.0]) @ _rotation(np.radians(angle)) @ np.diag([mirror, 1.0])
  # The creature point (0.2, -0.05), near its bounding box centre, lands at the jittered centre.
  offset = s / 2 + np.array([dx, dy]) * s - np.array([0.2, -0.05]) @ matrix.T
  outline_width = max(1, int(round(0.05 * ppu)))

  def frame(angle_deg: float, pivot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canvas transform of a part rotated by `angle_deg` and moved to `pivot` (creature units)."""
    return matrix @ _rotation(np.radians(angle_deg)), pivot @ matrix.T + offset

  body_frame = (matrix, offset)

  def polygon(points: np.ndarray, fill: tuple[int, int, int], outline: bool = True,
              where: tuple[np.ndarray, np.ndarray] = body_frame) -> None:
    """Fills `[N, 2]` `points` given in the part frame `where` (a `[2, 2]` matrix and an offset)."""
    xy = points @ where[0].T + where[1]
    draw.polygon(xy.ravel().tolist(), fill=fill, outline=_OUTLINE if outline else None,
                 width=outline_width if outline else 1)

  def disc(centres: np.ndarray, radius: float, fill: tuple[int, int, int],
           where: tuple[np.ndarray, np.ndarray] = body_frame) -> None:
    """Fills discs of `radius` (frame units) at `[N, 2]` `centres` in the frame `where`."""
    r = radius * np.sqrt(abs(np.linalg.det(where[0])))
    for x, y in centres @ where[0].T + where[1]:
      draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

  # Part colours: the palette colour with a per-channel jitter of up to 8%.
  rgb = np.clip(_PALETTE[[att[_HEAD_COLOUR], att[_BODY_COLOUR], att[_WING_COLOUR]]]
                * rng.uniform(0.92, 1.08, size=(3, 3)), 0, 255)
  body_rgb = rgb[1]
  head_colour, body_colour, wing_colour = (tuple(int(v) for v in c) for c in rgb)
  a = (0.8, 1.0, 1.2)[att[_BODY_SIZE]]
  shape = att[_BODY_SHAPE]
  top = _body_profile(shape, a, a * _BODY_X)
  b_max = float(top.max())

  # Tail (behind the body), in body colour.
  tail = _TAILS[att[_TAIL_SHAPE]]
  if tail is not None:
    where = frame(tail_swing, np.array([-0.9 * a, 0.1 * b_max]))
    for part in tail:
      polygon(part, body_colour, where=where)

  # Legs (behind the body).
  legs = (2, 4, 6)[att[_LEG_COUNT]]
  leg = _leg_shape((0.45, 0.85)[att[_LEG_LENGTH]])
  hips = np.linspace(-0.55 * a, 0.55 * a, legs)
  for x, h, swing in zip(hips, _body_profile(shape, a, hips), rng.uniform(-25, 25, size=legs)):
    polygon(leg, _LEG, outline=False, where=frame(swing, np.array([x, -0.7 * h])))

  # Body and its pattern (patterns stay inside the outline).
  body = np.concatenate([np.stack([a * _BODY_X, top], 1), np.stack([a * _BODY_X[::-1], -top[::-1]], 1)])
  polygon(body, body_colour)
  pattern = att[_BODY_PATTERN]
  if pattern == 1:  # three vertical stripes
    shade = _shade(body_rgb)
    for centre in (-0.45, 0.0, 0.45):
      xs = a * np.linspace(centre - 0.1, centre + 0.1, 4)
      h = 0.9 * _body_profile(shape, a, xs)
      polygon(np.concatenate([np.stack([xs, h], 1), np.stack([xs[::-1], -h[::-1]], 1)]), shade, outline=False)
  elif pattern == 2:  # two rows of spots at jittered positions
    shade = _shade(body_rgb)
    xs = a * (np.array([-0.55, -0.15, 0.25, 0.6]) + rng.uniform(-0.06, 0.06, size=4))
    hs = _body_profile(shape, a, xs)
    rows = np.array([-0.35, 0.3]) + rng.uniform(-0.1, 0.1, size=(4, 2))
    disc(np.stack([np.repeat(xs, 2), (hs[:, None] * rows).ravel()], 1), 0.13, shade)
  elif pattern == 3:  # pale belly
    xs = a * _BODY_X[1:-1]
    h = 0.9 * _body_profile(shape, a, xs)
    belly = np.concatenate([np.stack([xs, -0.15 * h], 1), np.stack([xs[::-1], -h[::-1]], 1)])
    polygon(belly, _CREAM, outline=False)

  # Head, tilted about the neck.
  r = (0.34, 0.5)[att[_HEAD_SIZE]]
  head_shape = att[_HEAD_SHAPE]
  neck = np.array([0.85 * a, 0.35 * b_max])
  rot, shift = frame(tilt, neck)
  where = (rot * r, np.array([0.55 * r, 0.25 * r]) @ rot.T + shift)  # unit radius, origin at the head centre
  if head_shape == 3:  # crest: three spikes behind the crown
    for spike in _CREST:
      polygon(spike, head_colour, where=where)
  if head_shape == 2:  # beak, pointing forward
    polygon(_BEAK_SHAPE, _BEAK, where=where)
  polygon(_SQUARE if head_shape == 1 else _CIRCLE, head_colour, where=where)
  disc(np.array([[0.4, 0.25]]), 0.16 + 0.05 / r, (15, 15, 15), where=where)  # the eye

  # Wing, on top of the body, flapping about its shoulder.
  polygon(_WINGS[att[_WING_SHAPE]], wing_colour, where=frame(flap, np.array([0.15 * a, 0.45 * b_max])))

  # Downsample, light and add noise (uniform, standard deviation sigma).
  pixels = np.asarray(image.reduce(2), np.float32)
  gain = np.array(cam.gain, np.float32) * np.float32(rng.uniform(0.88, 1.12))
  sigma = np.float32(cam.noise * rng.uniform(0.7, 1.3) * np.sqrt(12.0))
  noise = (rng.random(pixels.shape, dtype=np.float32) - np.float32(0.5)) * sigma
  return np.clip(pixels * gain + noise, 0, 255).astype(np.uint8)


class SyntheticSource:
  """Random-access source (grain `RandomAccessDataSource` protocol) of synthetic creatures.

  Index `i` is image `i % images_per_class` of class `classes[i // images_per_class]`.
  Examples: `{"image": uint8 [H, W, 3], "label": int32 (global class id),
  "attributes": int32 [NUM_ATTRIBUTES], "camera": int32, "index": int32}`.
  """

  def __init__(self, classes: Sequence[int] | range, *, images_per_class: int = 60, image_size: int = 64,
               seed: int = 0, num_classes: int = NUM_CLASSES):
    self.classes = tuple(int(c) for c in classes)
    bad = [c for c in self.classes if not 0 <= c < num_classes]
    if bad:
      raise ValueError(
          f"SyntheticSource classes {bad[:5]} are outside 0..{num_classes - 1} (num_classes={num_classes})")
    if images_per_class < 1:
      raise ValueError(f"SyntheticSource images_per_class={images_per_class}: expected >= 1")
    if image_size < 8:
      raise ValueError(f"SyntheticSource image_size={image_size}: expected >= 8")
    if seed < 0:
      raise ValueError(f"SyntheticSource seed={seed}: expected a non-negative integer")
    self.images_per_class = int(images_per_class)
    self.image_size = int(image_size)
    self.seed = int(seed)
    self.num_classes = int(num_classes)
    self.attribute_table = class_attributes(num_classes, seed)  # [num_classes, NUM_ATTRIBUTES]
    self.camera_table = camera_table(num_classes, seed)  # [num_classes, NUM_CAMERAS]

  def __len__(self) -> int:
    return len(self.classes) * self.images_per_class

  @property
  def labels(self) -> np.ndarray:
    """The label of every example, `[len(self)]`, without rendering."""
    return np.repeat(np.asarray(self.classes, np.int32), self.images_per_class)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    length = len(self)
    index = operator.index(index)
    if not -length <= index < length:
      raise IndexError(f"SyntheticSource index {index} is out of range for {length} examples "
                       f"({len(self.classes)} classes x {self.images_per_class} images per class)")
    index %= length
    class_id = self.classes[index // self.images_per_class]
    image_index = index % self.images_per_class
    camera = int(self.camera_table[class_id, image_index % NUM_CAMERAS])
    rng = np.random.default_rng([_IMAGE_STREAM, self.seed, class_id, image_index])
    attributes = self.attribute_table[class_id]
    return {
        "image": render(attributes, camera, self.image_size, rng),
        "label": np.int32(class_id),
        "attributes": attributes.copy(),
        "camera": np.int32(camera),
        "index": np.int32(index),  # position in this source
    }

  def __repr__(self) -> str:
    return (f"SyntheticSource(classes={len(self.classes)} [{self.classes[0] if self.classes else ''}..], "
            f"images_per_class={self.images_per_class}, image_size={self.image_size}, seed={self.seed}, "
            f"num_classes={self.num_classes})")
