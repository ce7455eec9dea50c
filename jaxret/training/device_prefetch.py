"""Training batches put on the devices ahead of the step that reads them, with a checkpointable
position that counts the batches handed out, not those read ahead."""
import collections
import json
from collections.abc import Callable, Iterator
from typing import Any


class DevicePrefetch:
  """Wraps a grain iterator: `next()` returns `put(batch)` (the global batch on the devices) and
  keeps `depth` batches put ahead, so the next batch is read and transferred while the current
  step runs (steps are dispatched asynchronously). The position it checkpoints
  (`get_state` / `set_state`, the protocol of grain's orbax handler) is the inner iterator's
  before the oldest batch not yet handed out: a run restored from it reads exactly the batches
  an uninterrupted run would have read next. `depth` 0 reads on demand.
  """

  def __init__(self, iterator: Iterator, put: Callable[[Any], Any], depth: int):
    self._iterator, self._put, self._depth = iterator, put, depth
    self._ahead = collections.deque()  # (inner state before reading the batch, the batch put)

  def __iter__(self) -> "DevicePrefetch":
    return self

  def __next__(self):
    while len(self._ahead) < max(self._depth, 1):
      state = self._iterator.get_state()
      self._ahead.append((state, self._put(next(self._iterator))))
    return self._ahead.popleft()[1]

  def get_state(self) -> bytes:
    state = self._ahead[0][0] if self._ahead else self._iterator.get_state()
    return json.dumps(state, indent=4).encode()

  def set_state(self, state: bytes) -> None:
    self._iterator.set_state(json.loads(state))
    self._ahead.clear()

  def start_prefetch(self) -> None:
    """Called by grain's checkpoint handler after a restore; batches are read on the next `next()`."""
