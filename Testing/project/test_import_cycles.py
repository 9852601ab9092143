"""No import cycle in the library (CrossModalitySynthLib) or in the training package.

Imports are read from the source with ``ast``: module-level and function-level (lazy) imports both
count, since a cycle closed only through a lazy import still couples the modules. Relative imports
are resolved against the importing module's package; ``from pkg import name`` is an edge to
``pkg.name`` when that is a module of the tree, else to ``pkg`` (its ``__init__``). Only modules
of the walked trees are nodes; an edge to a package's ``__init__`` is counted only where the code
names the package, not for every import of one of its submodules.
"""

import ast
import os
import textwrap
from typing import Dict, List, Optional, Set
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
ROOT = os.path.dirname(HERE)
TREES = {
    "CrossModalitySynthLib": os.path.join(ROOT, "CrossModalitySynth", "CrossModalitySynthLib"),
    "cmsynth_training": os.path.join(ROOT, "training", "cmsynth_training"),
}


def module_files(trees: Dict[str, str]) -> Dict[str, str]:
    """{dotted module name: path} of every .py file under each tree (``__init__`` = the package)."""
    modules = {}
    for top, root in trees.items():
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            rel = os.path.relpath(folder, root)
            package = top if rel == "." else top + "." + rel.replace(os.sep, ".")
            for name in sorted(files):
                if name.endswith(".py"):
                    stem = name[:-3]
                    modules[package if stem == "__init__" else f"{package}.{stem}"] = os.path.join(folder, name)
    return modules


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        parts = parts[:-(node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def import_graph(modules: Dict[str, str]) -> Dict[str, Set[str]]:
    """{module: the modules of ``modules`` it imports}, from every import statement in its source."""
    graph: Dict[str, Set[str]] = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        is_package = os.path.basename(path) == "__init__.py"
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(module, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the library's graph is far too shallow for the recursion limit
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Dict[str, Set[str]], component: Set[str]) -> List[str]:
    """A shortest cycle through the component's first module (breadth-first inside the component)."""
    start = min(component)
    parent: Dict[str, Optional[str]] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start} in its own component")


def test_no_import_cycle_in_the_library_or_training():
    modules = module_files(TREES)
    graph = import_graph(modules)
    # The walk saw the real trees and their edges (a parser that finds nothing would pass below).
    assert "CrossModalitySynthLib.inference.engine" in graph and "cmsynth_training.export" in graph
    assert "CrossModalitySynthLib.inference.precision" in graph["CrossModalitySynthLib.inference.engine"]
    assert "CrossModalitySynthLib.inference.engine" in graph["CrossModalitySynthLib.inference"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _write(root, files):
    for rel, text in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))


def test_cycle_finder_sees_lazy_relative_and_package_imports(tmp_path):
    _write(str(tmp_path), {
        "pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "from . import b\n\ndef f():\n    return b\n",
        "pkg/b.py": "def g():\n    from .sub.c import h  # lazy\n    return h\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import os\nfrom ..a import f\n",
        "pkg/d.py": "from pkg import sub\nimport pkg.b\n",
        "pkg/e.py": "from . import f\n",  # a name of pkg/__init__: an edge to the package
    })
    modules = module_files({"pkg": str(tmp_path / "pkg")})
    graph = import_graph(modules)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == {"pkg.sub", "pkg.b"}
    assert graph["pkg.e"] == {"pkg"}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    # Without the lazy import there is no cycle.
    _write(str(tmp_path), {"pkg/b.py": "def g():\n    return None\n"})
    assert find_cycles(import_graph(modules)) == []
