"""Flow code compiled so that none of its handlers runs while flowrt unwinds its thread.

flowrt ends a flow's thread by raising a `FlowSignal` in it (unload, end, stop, divergence):
CPython cannot drop a thread's frames any other way. Left alone, the flow's own `except:`,
`except BaseException`, `finally:` and `__exit__` code would run for that signal, writing
twice what it writes once per run, or catching the signal in a loop and spinning forever.
So every such handler of the flow's source starts with a guard that re-raises a flowrt
signal at once: for the flow, its code stops at the call it was parked at, as if its worker
had died there. Context managers of libraries (files, locks) still exit, and code the flow
hands to a library that runs it while unwinding is not guarded (see README, "Unloading").
"""

from __future__ import annotations

import ast
import sys
from types import CodeType
from typing import Any

from flowrt.errors import FlowSignal

GUARD = "__flowrt_unwinding__"  # the guard's name in a flow's globals
_EXITS = ("__exit__", "__aexit__")


def reraise_signal() -> None:
    """Re-raise the flowrt signal being handled, if any, before a flow's handler runs."""
    error = sys.exc_info()[1]
    if isinstance(error, FlowSignal):
        raise error
    if isinstance(error, BaseExceptionGroup) and error.subgroup(FlowSignal) is not None:
        raise error


def compile_flow(source: str, filename: str) -> CodeType:
    """Compile a flow's source with a guard at the top of each of its handlers.

    Raises `SyntaxError` as `compile` does; line numbers stay those of `source`.
    """
    tree = ast.parse(source, filename, "exec")
    tree = _Guards().visit(tree)
    tree.body.insert(_after_future_imports(tree), _import_guard())
    return compile(ast.fix_missing_locations(tree), filename, "exec")


def _guard(before: ast.stmt) -> ast.stmt:
    call = ast.Expr(ast.Call(ast.Name(GUARD, ast.Load()), [], []))
    return ast.copy_location(call, before)


class _Guards(ast.NodeTransformer):
    """Puts the guard first in every `except`, `finally` and `__exit__` body."""

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        self.generic_visit(node)
        node.body.insert(0, _guard(node.body[0]))
        return node

    def visit_Try(self, node: ast.Try) -> Any:
        self.generic_visit(node)
        if node.finalbody:
            node.finalbody.insert(0, _guard(node.finalbody[0]))
        return node

    def visit_TryStar(self, node: ast.TryStar) -> Any:
        self.generic_visit(node)
        if node.finalbody:
            node.finalbody.insert(0, _guard(node.finalbody[0]))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        return self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Any:
        self.generic_visit(node)
        if node.name in _EXITS:
            node.body.insert(0, _guard(node.body[0]))
        return node


def _after_future_imports(tree: ast.Module) -> int:
    index = 0
    for index, node in enumerate(tree.body):  # noqa: B007 - the index is what we want
        is_docstring = (
            index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        )
        if not (is_docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__")):
            return index
    return len(tree.body)


def _import_guard() -> ast.stmt:
    statement = ast.ImportFrom("flowrt.unwinding", [ast.alias("reraise_signal", GUARD)], 0)
    statement.lineno, statement.col_offset = 1, 0
    return statement
