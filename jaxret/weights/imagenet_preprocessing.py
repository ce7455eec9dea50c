"""torchvision's ImageNet evaluation transform, with PIL and NumPy, NHWC.

Resize(256) (short side, PIL bilinear), CenterCrop(224), ToTensor (/255), Normalize(mean, std):
the preprocessing torchvision's ImageNet weights were evaluated with.
"""
import numpy as np
from PIL import Image

# The per-channel (RGB) statistics every ImageNet-pretrained torchvision model expects: [3] float32.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def imagenet_eval_transform(image: np.ndarray | Image.Image, resize: int = 256,
                            crop: int = 224) -> np.ndarray:
  """RGB image [H, W, 3] uint8 (or a PIL image) -> normalised float32 [crop, crop, 3].

  The short side is resized to `resize` (long side int(resize * long / short), as torchvision
  computes it), then the centre `crop` x `crop` is cut out (top = round((h - crop) / 2)).
  """
  if isinstance(image, np.ndarray):
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
      raise ValueError(f"image of shape {image.shape} and dtype {image.dtype}: expected uint8 "
                       "[H, W, 3] RGB")
    image = Image.fromarray(image)
  image = image.convert("RGB")
  w, h = image.size
  short, long = min(w, h), max(w, h)
  new_short, new_long = resize, int(resize * long / short)
  new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
  image = image.resize((new_w, new_h), Image.BILINEAR)
  if min(new_w, new_h) < crop:
    raise ValueError(f"resize={resize} is smaller than crop={crop}")
  top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
  pixels = np.asarray(image, np.float32)[top:top + crop, left:left + crop] / 255.0
  return ((pixels - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)
