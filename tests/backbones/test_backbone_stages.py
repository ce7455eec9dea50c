"""ResNet and MobileNetV2 run in parts (`start` / `stop`, DeML's FNet / GNet split): the same
parameters and the same numbers as the whole network."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxret.backbones import get_backbone


# backbone, width, the parameters of FNet (stem, res2, res3) alone
BACKBONES = [("resnet18", 0.0625, {"conv1", "bn1", "layer1_0", "layer1_1", "layer2_0", "layer2_1"}),
             ("mobilenet_v2", 0.25, {f"features_{i}" for i in range(7)})]


@pytest.mark.parametrize("backbone, width, fnet_params", BACKBONES)
def test_two_parts_equal_the_whole_network(backbone, width, fnet_params):
  model = get_backbone(backbone, width_multiplier=width)
  images = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)

  def run(images):
    variables = model.init(jax.random.key(0), images, train=False)
    whole = model.apply(variables, images, train=False)
    fnet = model.apply(variables, images, train=False, stop="res3")
    gnet = model.apply(variables, fnet["res3"], train=False, start="res4")
    fnet_variables = model.init(jax.random.key(0), images, train=False, stop="res3")
    return variables, whole, fnet, gnet, fnet_variables

  variables, whole, fnet, gnet, fnet_variables = jax.jit(run)(images)
  assert set(fnet) == {"res2", "res3"} and set(gnet) == {"res4", "res5"}
  for name in ("res2", "res3"):
    np.testing.assert_array_equal(fnet[name], whole[name])
  for name in ("res4", "res5"):
    np.testing.assert_allclose(gnet[name], whole[name], rtol=1e-6)
  # FNet alone owns the stem and the first two stages' parameters, no more.
  assert set(fnet_variables["params"]) == fnet_params


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("start,stop", [("res5", "res4"), ("stem", "stem"), ("res6", "res5")])
def test_bad_parts_raise(backbone, start, stop):
  model = get_backbone(backbone, width_multiplier=0.25)
  with pytest.raises(ValueError, match="start="):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False, start=start, stop=stop),
                   jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
