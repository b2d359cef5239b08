"""Fixtures for the reproduce tests: fake systems installed as ``metashot.<system>.report``."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import pytest

from tests.reproduce.fake_systems import BEHAVIOURS


@pytest.fixture
def fake_systems(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``fake_systems(fewshot="good", chem="absent", ...)``: install fake ``metashot.<s>.report``
    modules in ``sys.modules`` ("absent": the import fails like a module that does not exist)."""

    def install(**behaviour: str) -> None:
        for system, kind in behaviour.items():
            build = BEHAVIOURS[kind](system)
            name = f"metashot.{system}.report"
            if build is None:
                monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError(name=name)
            else:
                module = types.ModuleType(name)
                module.build_report = build
                monkeypatch.setitem(sys.modules, name, module)

    return install
