"""Call fingerprints: what the determinism guard compares on replay."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

from flowrt.calls import digest


def test_a_digest_does_not_depend_on_the_hash_seed_of_the_worker():
    code = (
        "from flowrt.calls import digest; "
        "print(digest('connect', ({'b', 'a', 'c'},), {'tags': frozenset({'x', 'y', 'z'})}).hex())"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(seed)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(seen) == 1


def test_a_digest_tells_apart_different_arguments_and_names():
    base = digest("connect", ("db",), {"fetch": "SELECT 1"})
    assert base == digest("connect", ("db",), {"fetch": "SELECT 1"})
    assert base != digest("connect", ("db",), {"fetch": "SELECT 2"})
    assert base != digest("log", ("db",), {"fetch": "SELECT 1"})
    assert digest("x", ({1, 2},), {}) != digest("x", ([1, 2],), {})


def test_a_digest_of_an_unpicklable_argument_still_works():
    first = digest("connect", (lambda: 1,), {})
    assert len(first) == 8
