"""The package's shape: no import cycles (function-local imports included), backends never train.

The import graph is read from the source with ``ast`` (every ``import`` and
``from ... import`` statement anywhere in a module, inside functions too), not
from ``sys.modules``: an import hidden in a function body is still a
dependency. An edge goes to the module that is named: ``from . import bench``
to ``fastlr.bench``, ``from . import LogisticRegression`` to ``fastlr`` (the
package's ``__init__``). The implicit import of a parent package when a
submodule is loaded is not an edge (it is not a statement anyone wrote).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fastlr"


def _modules():
    """{dotted module name: path} for every .py file of the fastlr package."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name, modules):
    """``name`` if it is a fastlr module, else its longest prefix that is one (or None)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph():
    """{module: set of fastlr modules it imports anywhere in its source}."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name in base
            else:
                continue
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    edges.add(resolved)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_checker_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    assert "fastlr.backends.cpu" in graph["fastlr.backends"]  # package-relative imports resolve
    assert "fastlr.kernels.cpu" in graph["fastlr.backends.cpu"]  # ..kernels from a subpackage
    assert "fastlr" in graph["fastlr.train_command"]  # `from . import LogisticRegression` (in a function)


def test_no_import_cycles_in_fastlr():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["fastlr.backends._protocol", "fastlr.backends.cpu",
                                    "fastlr.backends.numpy_ref", "fastlr.backends.cuda",
                                    "fastlr.backends.dask_cluster"])
def test_a_backend_never_trains(module):
    """Backend modules import neither the trainer, the estimator, the input adapters nor the registry."""
    graph = import_graph()
    forbidden = {"fastlr.trainer", "fastlr.estimator", "fastlr", "fastlr.backends", "fastlr._dask_input",
                 "fastlr._inputs"}
    reachable, todo = set(), [module]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    assert not reachable & forbidden, f"{module} reaches {sorted(reachable & forbidden)}"
