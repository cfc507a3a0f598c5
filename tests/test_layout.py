"""The layout and direction rules of STYLE.md, checked statically on the source files with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flowrt", "tasks", "config")
EDGES = {"flowrt/__init__.py", "flowrt/client.py", "flowrt/cli.py", "flowrt/embedded.py"}
EDGES |= {"flowrt/cli_stats.py"}
CORE_FORBIDDEN = {"celery", "kombu", "config", "tasks"}
CONFIG_FORBIDDEN = {"flowrt", "tasks"}
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
MAX_LINES = 500


def _modules(*packages: str) -> list[Path]:
    found = sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))
    return [p for p in found if "__pycache__" not in p.parts]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _core_modules() -> list[Path]:
    return [p for p in _modules("flowrt") if _rel(p) not in EDGES]


def _package_of(path: Path) -> list[str]:
    """The package a module lives in, as parts: `flowrt/storage/sql.py` -> flowrt, storage."""
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def imported_roots(tree: ast.Module, package: list[str]) -> dict[str, int]:
    """Top-level names of every module `tree` imports (also inside functions), with a line each.

    Relative imports are resolved against `package`; `importlib.import_module("x")` and
    `__import__("x")` with a constant name count as imports too.
    """
    roots: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        if name:
            roots.setdefault(name.split(".")[0], line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                add(".".join([*base, node.module or ""]).strip("."), node.lineno)
            else:
                add(node.module or "", node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                add(str(first.value), node.lineno)
    return roots


def environment_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """Every mention of `os.environ`, `getenv` and friends, as (line, what)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES:
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Name) and node.id in ENVIRONMENT_NAMES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ENVIRONMENT_NAMES:
                    found.append((node.lineno, f"from os import {alias.name}"))
    return found


def init_violations(tree: ast.Module) -> list[tuple[int, str]]:
    """Statements of an `__init__.py` other than its docstring, imports and `__all__ = [...]`."""
    found: list[tuple[int, str]] = []
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            continue
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "__all__":
            continue
        found.append((node.lineno, ast.unparse(node).splitlines()[0]))
    return found


def _report(violations: list[str]) -> str:
    return "\n".join(["", *violations])


# --- the rules ------------------------------------------------------------------------------


def test_the_layout_has_the_packages_and_edges_the_rules_name() -> None:
    # Guards the checks below against passing vacuously after a rename.
    names = {_rel(p) for p in _modules(*PACKAGES)}
    assert EDGES <= names
    assert {"config/__init__.py", "tasks/__init__.py", "flowrt/runtime.py"} <= names
    assert len(_core_modules()) >= 10


def test_config_imports_nothing_of_flowrt_or_tasks() -> None:
    violations = [
        f"{_rel(path)}:{line} imports {root}"
        for path in _modules("config")
        for root, line in imported_roots(_parse(path), _package_of(path)).items()
        if root in CONFIG_FORBIDDEN
    ]
    assert not violations, _report(violations)


def test_runtime_core_imports_neither_celery_kombu_config_nor_tasks() -> None:
    violations = [
        f"{_rel(path)}:{line} imports {root}"
        for path in _core_modules()
        for root, line in imported_roots(_parse(path), _package_of(path)).items()
        if root in CORE_FORBIDDEN
    ]
    assert not violations, _report(violations)


def test_runtime_core_never_reads_the_environment() -> None:
    violations = [
        f"{_rel(path)}:{line} mentions {what}"
        for path in _core_modules()
        for line, what in environment_reads(_parse(path))
    ]
    assert not violations, _report(violations)


def test_every_module_starts_with_a_docstring_whose_first_line_says_what_it_is() -> None:
    violations = []
    for path in _modules(*PACKAGES):
        tree = _parse(path)
        first = tree.body[0] if tree.body else None
        starts = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        docstring = ast.get_docstring(tree)
        if not starts or not docstring or not docstring.splitlines()[0].strip():
            violations.append(f"{_rel(path)} does not start with a one-line docstring")
    assert not violations, _report(violations)


def test_no_module_is_over_500_lines() -> None:
    violations = [
        f"{_rel(path)} has {count} lines"
        for path in _modules(*PACKAGES)
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not violations, _report(violations)


def test_init_files_only_import_and_define_all() -> None:
    violations = [
        f"{_rel(path)}:{line} {statement}"
        for path in _modules(*PACKAGES)
        if path.name == "__init__.py"
        for line, statement in init_violations(_parse(path))
    ]
    assert not violations, _report(violations)


# --- the checkers catch what they are meant to catch ----------------------------------------

BAD_CORE = '''
"""A module that breaks every rule."""
import os
from os import getenv
import celery.app
from kombu import Connection
from .. import tasks
from ...config import settings

def late():
    import config
    import importlib
    importlib.import_module("tasks.steps")
    return os.environ.get("X"), getenv("Y"), os.getenv("Z")
'''


def test_the_import_checker_sees_every_kind_of_import() -> None:
    roots = imported_roots(ast.parse(BAD_CORE), ["flowrt", "storage"])
    assert {"celery", "kombu", "config", "tasks", "os"} <= set(roots)
    assert roots["celery"] == 5
    fine = imported_roots(
        ast.parse("from . import base\nfrom .sql import x\n"), ["flowrt", "storage"]
    )
    assert set(fine) == {"flowrt"}


def test_the_environment_checker_sees_environ_and_getenv() -> None:
    whats = {what for _, what in environment_reads(ast.parse(BAD_CORE))}
    assert {"os.environ", "getenv", "os.getenv", "from os import getenv"} <= whats
    assert environment_reads(ast.parse("import os\npath = os.path.join('a', 'b')\n")) == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ('"""Doc."""\nfrom a import b\n__all__ = ["b"]\n', 0),
        ('"""Doc."""\nimport config\napp = config.load()\n__all__ = ["app"]\n', 1),
        ('"""Doc."""\ndef f():\n    pass\n', 1),
        ('"""Doc."""\nX = 1\n', 1),
    ],
)
def test_the_init_checker_allows_only_imports_and_all(source: str, bad: int) -> None:
    assert len(init_violations(ast.parse(source))) == bad
