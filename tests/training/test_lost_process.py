"""`distributed.lost_process` on the errors a two-process CPU job raised when one process was
killed (issue 25; texts copied from those runs, jaxlib 0.10.2), and the heartbeat timeout check."""
import pytest

from jaxret.training import distributed
from jaxret.user_errors import InputError

GLOO = ("UNKNOWN: Gloo all-reduce failed: [external/gloo/gloo/transport/tcp/pair.cc:538] Read error "
        "[127.0.0.1]:34530: Connection reset by peer")
BARRIER = ("INTERNAL: Barrier failed because: task is set to ERROR: UNAVAILABLE: Task 3 heartbeat timeout. This "
           "indicates that the remote task has failed, got preempted, or crashed unexpectedly.")
POLLED = ("UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):\n2\nThe tasks have "
          "crashed. Check the task logs for an earlier error")


@pytest.mark.parametrize("text, index, count, lost", [
    (GLOO, 0, 2, 1), (GLOO, 1, 2, 0),  # two processes: the broken connection was to the other one
    (GLOO, 0, 4, None),  # four: gloo does not say which; the coordination service names it later
    (BARRIER, 0, 4, 3), (POLLED, 1, 4, 2), (f"{GLOO}\n{BARRIER}", 0, 4, 3),
    ("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB", 0, 2, None),  # not a lost process
])
def test_the_lost_process_is_read_from_the_error(text, index, count, lost):
  assert distributed.lost_process(text, index, count) == lost


@pytest.mark.parametrize("timeout", [0, -5, 2.5])
def test_a_heartbeat_timeout_that_is_not_a_positive_whole_number_is_refused(timeout):
  with pytest.raises(InputError, match=rf"config.heartbeat_timeout_seconds={timeout}: expected a positive"):
    distributed.initialize("127.0.0.1:1", 2, 0, heartbeat_timeout_seconds=timeout)
