"""The dependency direction of the design, read from the source with `ast`: layers import
neither pipelines nor apps, pipelines import no app, no app imports another (apps/core none),
and no modules import each other in a cycle. Imports inside functions count (they run when
called); imports under `if TYPE_CHECKING:` do not."""

from __future__ import annotations

import ast
from collections import deque
from itertools import pairwise
from pathlib import Path

PACKAGES = ("layers", "pipelines", "apps")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def module_paths(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every `.py` file of `packages` under `root`."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class ImportReader(ast.NodeVisitor):
    """Collects `(imported module, line)` for every import that runs, at any depth."""

    def __init__(self, module: str, is_package: bool, modules: dict[str, Path]):
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.imports: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append((alias.name, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package_parts = self.package.split(".")
            anchor = ".".join(package_parts[: len(package_parts) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self.imports.append((submodule if submodule in self.modules else base, node.lineno))


def import_graph(root: Path, packages=PACKAGES) -> dict[str, list[tuple[str, int]]]:
    """Module -> the project modules it imports, with the line of each import."""
    modules = module_paths(root, packages)
    graph = {}
    for module, path in modules.items():
        reader = ImportReader(module, path.name == "__init__.py", modules)
        reader.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[module] = [
            (imported, line)
            for imported, line in reader.imports
            if imported.split(".")[0] in packages
        ]
    return graph


def app_name(module: str) -> str | None:
    """`"sentiment"` for `apps.sentiment.model`, `"core"` for `apps.core.cli`."""
    parts = module.split(".")
    return parts[1] if parts[0] == "apps" and len(parts) > 1 else None


def forbidden_reason(importer: str, imported: str) -> str | None:
    importer_top, imported_top = importer.split(".")[0], imported.split(".")[0]
    if importer_top == "layers" and imported_top in ("pipelines", "apps"):
        return "layers import neither pipelines nor apps"
    if importer_top == "pipelines" and imported_top == "apps":
        return "pipelines import no app"
    importer_app, imported_app = app_name(importer), app_name(imported)
    if importer_app and imported_app not in (None, "core", importer_app):
        if importer_app == "core":
            return "apps/core imports no app"
        return "no app imports another app"
    return None


def direction_violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    violations = []
    for importer, imports in sorted(graph.items()):
        for imported, line in imports:
            reason = forbidden_reason(importer, imported)
            if reason:
                violations.append(f"{importer} imports {imported} (line {line}): {reason}")
    return violations


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """One cycle `[a, b, ..., a]` per group of modules that import each other, through the
    group's first module, shortest first found."""
    successors = {
        module: sorted({imported for imported, _ in imports if imported in graph})
        for module, imports in graph.items()
    }

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for successor in successors[stack.pop()]:
                if successor not in seen:
                    seen.add(successor)
                    stack.append(successor)
        return seen

    reach = {module: reachable(module) for module in graph}
    cycles, covered = [], set()
    for start in sorted(graph):
        if start in covered or start not in reach[start]:
            continue
        group = {module for module in reach[start] if start in reach[module]}
        covered |= group
        previous = {}
        queue = deque([start])
        while start not in previous:
            module = queue.popleft()
            for successor in successors[module]:
                if successor in group and successor not in previous:
                    previous[successor] = module
                    queue.append(successor)
        cycle = [start]
        while cycle[-1] != start or len(cycle) == 1:
            cycle.append(previous[cycle[-1]])
        cycles.append(cycle[::-1])
    return cycles


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_on_a_synthetic_tree(tmp_path):
    write_tree(
        tmp_path,
        {
            "layers/__init__.py": "",
            "layers/first.py": (
                "from typing import TYPE_CHECKING\n"
                "import keras\n"
                "if TYPE_CHECKING:\n"
                "    from apps.core import app\n"
                "def build():\n"
                "    from layers import second\n"
            ),
            "layers/second.py": "from .first import build\n",
            "layers/third.py": "def load():\n    import pipelines.text\n",
            "pipelines/__init__.py": "",
            "pipelines/text.py": "from layers import first\n",
            "apps/__init__.py": "",
            "apps/core/__init__.py": "",
            "apps/core/app.py": "from apps.sentiment import model\n",
            "apps/sentiment/__init__.py": "",
            "apps/sentiment/model.py": (
                "from apps.core.app import App\nfrom apps.translation import data\nimport layers\n"
            ),
            "apps/translation/__init__.py": "",
            "apps/translation/data.py": "from . import helpers\nfrom .helpers import clean\n",
            "apps/translation/helpers.py": "from apps.translation import data\n",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["layers.second"] == [("layers.first", 1)]
    assert graph["layers.first"] == [("layers.second", 6)]
    assert graph["apps.translation.data"] == [
        ("apps.translation.helpers", 1),
        ("apps.translation.helpers", 2),
    ]
    assert direction_violations(graph) == [
        "apps.core.app imports apps.sentiment.model (line 1): apps/core imports no app",
        "apps.sentiment.model imports apps.translation.data (line 2): no app imports another app",
        "layers.third imports pipelines.text (line 2): layers import neither pipelines nor apps",
    ]
    assert import_cycles(graph) == [
        ["apps.core.app", "apps.sentiment.model", "apps.core.app"],
        ["apps.translation.data", "apps.translation.helpers", "apps.translation.data"],
        ["layers.first", "layers.second", "layers.first"],
    ]


def test_a_longer_cycle_and_a_self_import_are_reported_as_lists():
    graph = {
        "pipelines.a": [("pipelines.b", 1)],
        "pipelines.b": [("pipelines.c", 1), ("pipelines.d", 2)],
        "pipelines.c": [("pipelines.a", 1)],
        "pipelines.d": [("pipelines.d", 3)],
    }
    assert import_cycles(graph) == [
        ["pipelines.a", "pipelines.b", "pipelines.c", "pipelines.a"],
        ["pipelines.d", "pipelines.d"],
    ]


def test_the_project_reads_its_real_imports():
    graph = import_graph(PROJECT_ROOT)
    assert {"layers.recurrent_encoder", "pipelines.windows", "apps.core.cli"} <= set(graph)
    assert ("layers.arguments", 5) in graph["layers.recurrent_encoder"]
    assert any(imported.startswith("layers.") for imported, _ in graph["apps.forecasting.model"])


def test_the_project_follows_the_dependency_direction():
    violations = direction_violations(import_graph(PROJECT_ROOT))
    assert not violations, "\n".join(violations)


def test_the_project_has_no_import_cycle():
    graph = import_graph(PROJECT_ROOT)
    cycles = import_cycles(graph)

    def described(cycle):
        steps = [
            f"{importer} line {min(line for name, line in graph[importer] if name == imported)}"
            for importer, imported in pairwise(cycle)
        ]
        return f"{cycle} (imports at {', '.join(steps)})"

    assert not cycles, "import cycles:\n" + "\n".join(described(cycle) for cycle in cycles)
