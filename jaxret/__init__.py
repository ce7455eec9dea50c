"""jaxret: attribute-aware fine-grained retrieval, person re-ID and hashing in JAX/Flax.

`jaxret.train`, `jaxret.restore`, `jaxret.evaluate` and `jaxret.embed` are the one-call API
(`jaxret/api.py`), imported on first use so that `import jaxret.<module>` stays light.
"""
API = ("train", "restore", "evaluate", "embed")


def __getattr__(name: str):
  if name in API:
    from jaxret import api  # pylint: disable=import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f"module 'jaxret' has no attribute {name!r}")
