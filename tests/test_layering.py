"""The package's import graph runs one way between its layers: training uses evaluation, never the
reverse, and nothing below them reaches up."""
import ast
import os

JAXRET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jaxret")


def import_graph() -> dict[str, set[str]]:
  """module -> the jaxret modules it imports (read from the source, every import statement)."""
  modules = {}
  for folder, _, files in os.walk(JAXRET):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        parts = os.path.relpath(path, os.path.dirname(JAXRET))[:-3].split(os.sep)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  graph = {}
  for module, path in modules.items():
    imported = set()
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.Import):
        imported |= {alias.name for alias in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module:  # the submodules named, else the module
        names = {f"{node.module}.{alias.name}" for alias in node.names}
        imported |= names if names <= set(modules) else names | {node.module}
    graph[module] = {m for m in imported if m in modules}
  return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
  seen, todo = set(), [start]
  while todo:
    for child in graph[todo.pop()]:
      if child not in seen:
        seen.add(child)
        todo.append(child)
  return seen


def test_evaluation_never_imports_training_while_training_imports_evaluation():
  graph = import_graph()
  in_package = lambda module, package: module == package or module.startswith(package + ".")
  evaluation = [m for m in graph if in_package(m, "jaxret.eval")]
  training = [m for m in graph if in_package(m, "jaxret.training")]
  assert evaluation and training
  for module in evaluation:
    assert not {m for m in reachable(graph, module) if in_package(m, "jaxret.training")}, module
  assert any(in_package(m, "jaxret.eval") for module in training for m in graph[module])


def test_lower_layers_import_neither_training_nor_evaluation():
  graph = import_graph()
  for package in ("jaxret.data", "jaxret.methods", "jaxret.ops", "jaxret.losses", "jaxret.backbones",
                  "jaxret.weights", "jaxret.mesh"):
    for module in [m for m in graph if m == package or m.startswith(package + ".")]:
      above = {m for m in reachable(graph, module) if m.startswith(("jaxret.training", "jaxret.eval"))}
      assert not above, (module, above)
