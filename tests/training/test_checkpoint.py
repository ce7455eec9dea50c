import jax.numpy as jnp
import numpy as np

from jaxret.training import checkpoint
from jaxret.training.state import TrainState


def _state(step, value):
  return TrainState(step=jnp.int32(step), params={"w": jnp.full((3,), value)},
                    method_state={"m": jnp.float32(-value)}, opt_state=(), nonfinite_step=jnp.int32(-1))


def test_best_model_is_the_one_with_the_highest_validation_metric(tmp_path):
  manager = checkpoint.make_best_manager(str(tmp_path), "map")
  assert checkpoint.restore_best(manager, _state(0, 0.0)) is None
  for step, value, score in ((1, 1.0, 0.2), (2, 2.0, 0.9), (3, 3.0, 0.5)):
    checkpoint.save_if_best(manager, _state(step, value), {"map": score, "nmi": 1.0 - score})
  checkpoint.save_if_best(manager, _state(2, 99.0), {"map": 0.95})  # a resumed run offers step 2 again
  step, model = checkpoint.restore_best(manager, _state(0, 0.0))
  manager.close()
  assert step == 2
  np.testing.assert_array_equal(model["params"]["w"], [2.0] * 3)
  assert float(model["method_state"]["m"]) == -2.0
  assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["2"]

  reopened = checkpoint.make_best_manager(str(tmp_path), "map")  # after a restart
  checkpoint.save_if_best(reopened, _state(4, 4.0), {"map": 0.7})
  assert checkpoint.restore_best(reopened, _state(0, 0.0))[0] == 2
  checkpoint.save_if_best(reopened, _state(5, 5.0), {"map": 0.91})
  assert checkpoint.restore_best(reopened, _state(0, 0.0))[0] == 5
  reopened.close()
