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
    assert "fastlr.estimator" in graph["fastlr.model_file"]  # a function-local import


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


# -- the backend registry ---------------------------------------------------------------------

FLAGS = ("accepts_sparse", "accepts_device_arrays", "has_hess_vec", "distributed")


@pytest.mark.parametrize("name", ["cpu", "cuda", "numpy", "dask"])
def test_registered_backends_have_the_protocol_and_truthful_flags(name):
    from fastlr.backends import BACKEND_NAMES, Backend, backend_class

    cls = backend_class(name)
    assert name in BACKEND_NAMES and cls.name == name
    for method in ("put", "loss_grad", "sgd_epoch", "decision_function"):
        assert callable(getattr(cls, method, None)), f"{name} lacks {method}"
    assert all(isinstance(getattr(cls, flag), bool) for flag in FLAGS)
    assert cls.has_hess_vec == callable(getattr(cls, "hess_vec", None))
    assert set(Backend.__annotations__) >= set(FLAGS) | {"name"}


def test_names_come_from_the_registry():
    """The CLI, bench and model files list what the registry holds (filtered by capability flags)."""
    import argparse

    from fastlr import bench
    from fastlr.backends import BACKEND_NAMES, backend_names
    from fastlr.cli import build_parser

    assert BACKEND_NAMES == ("auto",) + backend_names()
    assert bench.BENCH_BACKENDS == backend_names(distributed=False)
    assert set(backend_names(accepts_sparse=True)) == {"cpu", "numpy"}
    assert backend_names(distributed=True) == ("dask",)
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    option = next(a for a in commands.choices["train"]._actions if a.dest == "backend")
    assert tuple(option.choices) == ("auto",) + backend_names(distributed=False)


def test_register_adds_a_backend_everywhere(monkeypatch):
    import fastlr.backends as registry
    from fastlr import LogisticRegression
    from fastlr.backends import CPUBackend

    class EchoBackend(CPUBackend):
        name = "echo"

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "BACKEND_NAMES", registry.BACKEND_NAMES)
    registry.register(EchoBackend)
    assert "echo" in registry.BACKEND_NAMES and "echo" in registry.backend_names(distributed=False)
    assert isinstance(registry.get_backend("echo"), EchoBackend)

    class Incomplete:
        name = "incomplete"

    with pytest.raises(TypeError, match="capability flag"):
        registry.register(Incomplete)
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        registry.get_backend("nope")
    assert LogisticRegression(backend="cpu").backend == "cpu"
