"""Split protocols: which classes train, which validate, which are held out for testing."""
from collections.abc import Sequence


def open_set_classes(num_classes: int) -> tuple[range, range]:
  """Zero-shot / open-set protocol: first half of the classes trains, second half tests."""
  half = num_classes // 2
  return range(0, half), range(half, num_classes)


def carve_validation(train_classes: Sequence[int], num_val_classes: int) -> tuple[list[int], list[int]]:
  """Holds out the last `num_val_classes` training classes for model selection.

  Validation never touches test classes, so choosing a checkpoint on it is not test-set selection.
  """
  train_classes = list(train_classes)
  if not 0 <= num_val_classes < len(train_classes):
    raise ValueError(
        f"config.data.val_classes={num_val_classes}: expected 0 <= val_classes < "
        f"{len(train_classes)} (the number of training classes)")
  cut = len(train_classes) - num_val_classes
  return train_classes[:cut], train_classes[cut:]
