"""Which Flow-API uses of Cloudomation-style flow scripts flowrt supports, found by parsing them."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import pkgutil
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DATA = ""  # a plain value (a field read, a dict): its methods are not Flow-API uses
UNKNOWN = "?"  # a handle flowrt has no type for (say, what a missing call would return)
MODULE = "mod"  # the `flow_api` module itself
DATA_METHODS = {"get", "load", "exists"}  # reading a field of a handle gives data
LABELS = {"Execution": "this", "System": "system"}
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
LOOSE = "taken by **kwargs: checked when the call runs, not here"


@dataclass
class Use:
    """One Flow-API use of a script, and whether flowrt supports it."""

    line: int
    what: str  # "this.task", "this.flow(name=)", "connection type GIT", "flow_api.X", ...
    ok: bool
    why: str = ""


@dataclass
class Report:
    """The Flow-API uses of one script (or why it could not be parsed)."""

    file: str
    error: str | None = None
    uses: list[Use] = field(default_factory=list)

    @property
    def missing(self) -> list[Use]:
        return sorted((u for u in self.uses if not u.ok), key=lambda u: u.line)


p_kind = inspect.Parameter


class Api:
    """flowrt's Flow-API as its classes say at run time: methods, signatures, return types."""

    def __init__(self) -> None:
        import flowrt.flow_api as fa
        from flowrt.connectors.base import connector_types

        self.module = fa
        from flowrt.flow_api.inputs import INPUT_TYPE

        # INPUT is no connector: flowrt asks people through a message (flow_api/inputs.py).
        self.types = {name.lower() for name in connector_types()} | {INPUT_TYPE.lower()}
        mods = [fa] + [
            importlib.import_module(m.name)
            for m in pkgutil.iter_modules(fa.__path__, "flowrt.flow_api.")
        ]
        # the handle classes: every public class of flowrt.flow_api and its modules but errors
        objects = [(name, obj) for mod in mods for name, obj in vars(mod).items()]
        self.classes: dict[str, type] = {
            name: obj
            for name, obj in objects
            if inspect.isclass(obj)
            and obj.__module__.startswith(fa.__name__)
            and name[0] != "_"
            and not issubclass(obj, (BaseException, str))
        }

    def has_method(self, tag: str, name: str) -> bool:
        return callable(getattr(self.classes.get(tag), name, None))

    def returns(self, tag: str, name: str) -> str:
        """The tag of what `tag.name(...)` returns, from its return annotation."""
        ann = getattr(getattr(self.classes[tag], name), "__annotations__", {}).get("return")
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
        handles = [word for word in re.findall(r"\w+", text) if word in self.classes]
        if handles:  # a handle, or a list of them (`wait_for`) to loop over
            return ("list:" if text.startswith("list[") else "") + handles[0]
        return DATA if name in DATA_METHODS or text not in ("", "Any") else UNKNOWN

    def misfits(self, tag: str, name: str, call: ast.Call, label: str) -> list[Use]:
        """The keywords and arguments of `call` that do not fit `tag.name` (and, ok, those
        only a `**kwargs` takes: the method checks them when it runs, not its signature)."""
        sig = inspect.signature(getattr(self.classes[tag], name))
        if inspect.isfunction(inspect.getattr_static(self.classes[tag], name)):  # drop `self`
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        params = sig.parameters
        spread = any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        )
        filled = [n for n, p in params.items() if p.kind is not p.KEYWORD_ONLY][: len(call.args)]
        problems: list[Use] = []
        for kw in (k for k in call.keywords if k.arg is not None):
            param = params.get(kw.arg)
            if param is None or param.kind not in NAMED:
                loose = any(p.kind is p.VAR_KEYWORD for p in params.values())
                why = LOOSE if loose else "no such keyword argument"
                problems.append(Use(call.lineno, f"{label}({kw.arg}=)", loose, why))
            elif kw.arg in filled and not spread:
                problems.append(Use(call.lineno, f"{label}({kw.arg}=)", False, "given twice"))
            elif param.annotation in ("bool", bool) and "return_when." in ast.unparse(kw.value):
                problems.append(
                    Use(call.lineno, f"{label}({kw.arg}=return_when)", False, "read as bool")
                )
        if all(u.ok for u in problems) and not spread:
            try:
                # Python hands a keyword named like a positional-only parameter to **kwargs,
                # which inspect's bind() refuses: leave those out of the check.
                spill = any(p.kind is p.VAR_KEYWORD for p in params.values())
                keywords = {
                    k.arg: None
                    for k in call.keywords
                    if k.arg
                    and not (
                        spill and k.arg in params and params[k.arg].kind is p_kind.POSITIONAL_ONLY
                    )
                }
                sig.bind(*[None] * len(call.args), **keywords)
            except TypeError as error:
                problems.append(Use(call.lineno, f"{label}(...)", False, str(error)))
        return problems


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class Scan(ast.NodeVisitor):
    """Walks one script, following what names hold (`this`, `system`, handles from them)."""

    def __init__(self, api: Api) -> None:
        self.api, self.env, self.uses = api, dict[str, str](), list[Use]()

    def use(self, node: ast.AST, what: str, ok: bool, why: str = "") -> None:
        self.uses.append(Use(getattr(node, "lineno", 0), what, ok, why))

    def bind(self, target: ast.expr, tag: str) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = tag  # DATA too: a name bound anew holds no handle any more
        else:
            self.visit(target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "flow_api":
                self.env[alias.asname or "flow_api"] = MODULE

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        args = node.args.posonlyargs + node.args.args
        if node.name == "handler" and len(args) >= 2:
            self.env[args[0].arg], self.env[args[1].arg] = "System", "Execution"
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        tag = self.eval(node.value)
        for target in node.targets:
            self.bind(target, tag)

    def visit_For(self, node: ast.For) -> None:
        tag = self.eval(node.iter)
        self.bind(node.target, tag[5:] if tag.startswith("list:") else tag)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    def eval(self, node: ast.expr) -> str:
        """The tag of what `node` gives; records the Flow-API uses on the way."""
        if isinstance(node, ast.Name):
            return self.env.get(node.id, DATA)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        self.generic_visit(node)
        return DATA

    visit_Call = visit_Attribute = eval  # a use whose result no name keeps

    def attribute(self, node: ast.Attribute) -> str:
        chain, root = [node.attr], node.value
        while isinstance(root, ast.Attribute):
            chain.insert(0, root.attr)
            root = root.value
        if isinstance(root, ast.Name) and self.env.get(root.id) == MODULE:
            obj: Any = self.api.module
            for part in chain:
                obj = getattr(obj, part, None)
            self.use(node, "flow_api." + ".".join(chain), obj is not None)
            return DATA
        tag = self.eval(node.value)
        cls = self.api.classes.get(tag[4:] if tag.startswith("cls:") else tag)
        if cls is None or node.attr.startswith("_"):
            return DATA
        # a class attribute, or an instance attribute its code assigns (`self.name = ...`)
        own = re.search(rf"\bself\.{re.escape(node.attr)}\b", inspect.getsource(cls))
        ok = hasattr(cls, node.attr) or own is not None
        self.use(node, f"{LABELS.get(cls.__name__, cls.__name__)}.{node.attr}", ok)
        value = getattr(cls, node.attr, None)
        return f"cls:{value.__name__}" if inspect.isclass(value) else DATA

    def call(self, node: ast.Call) -> str:
        result = DATA
        if isinstance(node.func, ast.Attribute):
            receiver = self.eval(node.func.value)
            known = receiver == UNKNOWN or receiver in self.api.classes
            if known and not node.func.attr.startswith("_"):
                result = self.method(receiver, node.func.attr, node)
        else:
            self.visit(node.func)
        for arg in node.args:
            self.eval(arg.value if isinstance(arg, ast.Starred) else arg)
        for kw in node.keywords:
            self.eval(kw.value)
            if kw.arg in ("connector_type", "connection_type"):
                self.connection_type(kw.value)
        return result

    def method(self, receiver: str, name: str, node: ast.Call) -> str:
        label = f"{LABELS.get(receiver, receiver)}.{name}"
        if receiver == "Execution" and name == "task" and node.args:
            self.connection_type(node.args[0])
        tags = [receiver] if receiver != UNKNOWN else sorted(self.api.classes)
        candidates = [tag for tag in tags if self.api.has_method(tag, name)]
        if not candidates:
            self.use(node, label, False, "no such method")
            return DATA if name in DATA_METHODS else UNKNOWN
        fits = {tag: self.api.misfits(tag, name, node, label) for tag in candidates}
        fit = next((tag for tag in candidates if all(u.ok for u in fits[tag])), None)
        self.uses += fits[fit or candidates[0]] + ([Use(node.lineno, label, True)] if fit else [])
        return self.api.returns(fit or candidates[0], name)

    def connection_type(self, node: ast.expr) -> None:
        name = _text(node)  # a type given as a literal: `this.task('GIT', ...)`
        if name is not None:
            self.use(node, f"connection type {name}", name.lower() in self.api.types)


def scan_file(path: Path, api: Api) -> Report:
    """The Flow-API uses of the script at `path`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        return Report(path.name, f"does not parse: {error.msg} (line {error.lineno})")
    scan = Scan(api)
    scan.visit(tree)
    return Report(path.name, None, sorted(scan.uses, key=lambda u: u.line))


def summary(reports: list[Report]) -> dict[str, Any]:
    """How many parsed scripts pass, and the unsupported uses by the number of scripts."""
    parsed = [r for r in reports if r.error is None]
    uses, calls, loose = Counter[str](), Counter[str](), Counter[str]()
    for report in parsed:
        uses.update({use.what for use in report.missing})
        calls.update({use.what.split("(")[0] for use in report.missing})
        loose.update({use.what for use in report.uses if use.why == LOOSE})
    return {
        "passing": sum(1 for r in parsed if not r.missing),
        "total": len(parsed),
        "unparsed": [r.file for r in reports if r.error is not None],
        "missing_by_scripts": dict(uses.most_common()),  # each unsupported use: in how many
        "missing_calls_by_scripts": dict(calls.most_common()),  # the same, by call
        "loose_by_scripts": dict(loose.most_common()),  # keywords only a **kwargs took
    }


def render(reports: list[Report], shown: int = 3, top: int = 15) -> str:
    """The table: each script's verdict or its first unsupported uses, then the summary."""
    width = max((len(r.file) for r in reports), default=6) + 2
    lines = [f"{'script':<{width}}result"]
    for r in reports:
        first = ", ".join(f"{u.what} (l.{u.line})" for u in r.missing[:shown])
        more = f" (+{len(r.missing) - shown} more)" if len(r.missing) > shown else ""
        ok = f"supported ({len(r.uses)} uses)"
        lines.append(f"{r.file:<{width}}{r.error or (f'no: {first}{more}' if r.missing else ok)}")
    totals = summary(reports)
    unparsed = f" ({len(totals['unparsed'])} not parsed, not counted)" if totals["unparsed"] else ""
    lines.append(
        f"\n{totals['passing']} of {totals['total']} scripts get past every Flow-API call{unparsed}"
    )
    if totals["missing_calls_by_scripts"]:
        lines.append("most common unsupported uses (number of scripts; the keywords and so on):")
    for call, count in list(totals["missing_calls_by_scripts"].items())[:top]:
        kinds = totals["missing_by_scripts"].items()
        variants = [f"{w[len(call) :]} {n}" for w, n in kinds if w.startswith(call + "(")][:6]
        lines.append(f"  {count:>3}  {call}" + (f"  {', '.join(variants)}" if variants else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="flow scripts (.py)")
    parser.add_argument("--json", action="store_true", help="print every use as JSON")
    args = parser.parse_args(argv)
    reports = [scan_file(path, api) for api in [Api()] for path in args.files]
    if args.json:
        out = {"scripts": [asdict(r) | {"ok": r.error is None and not r.missing} for r in reports]}
        print(json.dumps(out | summary(reports), indent=2))
    else:
        print(render(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
