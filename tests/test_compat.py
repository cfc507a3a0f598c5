"""bench/compat.py: it finds the Flow-API uses flowrt lacks in a flow script, and no others."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_compat", ROOT / "bench" / "compat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


compat = _load()

SUPPORTED = """\
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    inputs = this.get('input_value')
    for key, value in inputs.items():  # a dict's methods are no Flow-API uses
        this.log(key, value)
    child = this.flow('child', inputs={'n': 1}, wait=False)
    this.wait_for(child, return_when=system.return_when.ALL_ENDED)
    total = child.get('output_value')['total']
    try:
        system.setting('limits').save(value={'total': total})
    except flow_api.exceptions.DependencyFailedError:
        pass
    rows = this.connect('crm', sql='select 1').get('output_value')
    this.sleep(1)
    return this.success(f'{rows} {total}')
"""

MISSING_METHOD = """\
def handler(system, this):
    this.no_such_call_anywhere('x')
    return this.success('done')
"""

UNKNOWN_KWARG = """\
def handler(system, this):
    this.sleep(1, colour='red')
    return this.success('done')
"""

UNSUPPORTED_TYPE = """\
def handler(system, this):
    this.connect('pigeon', connector_type='CARRIER_PIGEON', ring=1)
    this.connect('api', connector_type='ReSt', path='/')
    return this.success('done')
"""

CHAINED = """\
def handler(system, this):
    answer = system.no_such_record(subject='hi').no_such_wait().get('response')
    answer.items()
    return this.success('done')
"""


@pytest.fixture(scope="module")
def api() -> object:
    return compat.Api()


def _scan(tmp_path: Path, api: object, text: str, name: str = "flow.py") -> object:
    path = tmp_path / name
    path.write_text(text)
    return compat.scan_file(path, api)


def test_a_supported_flow_passes(tmp_path: Path, api: object) -> None:
    report = _scan(tmp_path, api, SUPPORTED)
    assert report.error is None
    assert report.missing == []
    used = {use.what for use in report.uses}
    assert {"this.get", "this.flow", "this.wait_for", "ChildExecution.get"} <= used
    assert {"Setting.save", "system.setting", "ConnectionExecution.get", "this.success"} <= used
    assert "flow_api.exceptions.DependencyFailedError" in used
    assert "system.return_when" in used
    assert not any(what.startswith("?.") for what in used)  # inputs.items() is no use


def test_a_missing_method_is_flagged(tmp_path: Path, api: object) -> None:
    (use,) = _scan(tmp_path, api, MISSING_METHOD).missing
    assert (use.what, use.line, use.why) == ("this.no_such_call_anywhere", 2, "no such method")


def test_an_unknown_keyword_is_flagged(tmp_path: Path, api: object) -> None:
    (use,) = _scan(tmp_path, api, UNKNOWN_KWARG).missing
    assert (use.what, use.why) == ("this.sleep(colour=)", "no such keyword argument")


def test_an_unsupported_connection_type_is_flagged(tmp_path: Path, api: object) -> None:
    uses = {use.what: use.ok for use in _scan(tmp_path, api, UNSUPPORTED_TYPE).uses}
    assert uses["connection type CARRIER_PIGEON"] is False
    assert uses["connection type ReSt"] is True  # types compare case-insensitively


def test_a_chain_after_a_missing_call_is_followed(tmp_path: Path, api: object) -> None:
    missing = [use.what for use in _scan(tmp_path, api, CHAINED).missing]
    assert missing == ["system.no_such_record", "?.no_such_wait"]  # .get: data; .items: no use


def test_the_summary_counts_scripts_and_skips_what_does_not_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for name, text in [("ok.py", SUPPORTED), ("bad.py", MISSING_METHOD), ("x.py", "def (")]:
        files.append(tmp_path / name)
        files[-1].write_text(text)
    assert compat.main([str(f) for f in files]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 scripts get past every Flow-API call (1 not parsed, not counted)" in out
    assert compat.main(["--json", *map(str, files)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["passing"], data["total"], data["unparsed"]) == (1, 2, ["x.py"])
    assert data["missing_by_scripts"] == {"this.no_such_call_anywhere": 1}
    assert [s["ok"] for s in data["scripts"]] == [True, False, False]
