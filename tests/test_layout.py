"""The package reads in the order data flows: no import cycles, and reading never imports training."""

from __future__ import annotations

import ast
from pathlib import Path

import deepcls

PACKAGE = Path(deepcls.__file__).parent
# entry points and the modules every stage shares; everything else lives in subpackages
TOP_LEVEL = {
    "__init__",
    "__main__",
    "api",
    "atomic",
    "cli",
    "config",
    "errors",
    "numeric",
    "progress",
    "study",
    "version",
}
READERS = ("analysis", "report")  # read the store; never import what trains
TRAINERS = ("engine", "execution")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every deepcls module ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES
            found |= submodules
            if len(submodules) < len(node.names):  # names defined in ``base`` itself
                found.add(base)
    return {m for m in found if m in MODULES and m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_top_level_holds_only_the_entry_points_and_shared_modules():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL, sorted(top - TOP_LEVEL)
    packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    assert 4 <= len(packages) <= 9, packages


def test_nothing_imports_from_the_package_root():
    """The root only re-exports for notebooks: a module that imported from it would run back up the flow."""
    importers = sorted(module for module, targets in _graph().items() if "deepcls" in targets and module != "deepcls")
    assert not importers, importers


def test_no_import_cycle_among_modules():
    graph = _graph()
    graph.pop("deepcls", None)  # the notebook surface: it imports on attribute access (PEP 562), not on import
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_import_cycle_among_subpackages():
    stages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        if module == "deepcls":
            continue
        stages.setdefault(_stage(module), set()).update(_stage(t) for t in targets if _stage(t) != _stage(module))
    assert _cycle(stages) is None, " -> ".join(_cycle(stages))


def test_readers_never_import_what_trains():
    for module, targets in _graph().items():
        if _stage(module) in READERS:
            assert not {t for t in targets if _stage(t) in TRAINERS}, module


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
