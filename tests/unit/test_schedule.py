"""tests/schedule.py: `make test` hands tests out longest first, and the tests of a module-scoped fixture
as one unit (one xdist group) costed at their sum."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tests import schedule


@dataclass
class _Item:
    nodeid: str
    scope: str = "function"
    marks: list[Any] = field(default_factory=list)

    @property
    def _fixtureinfo(self) -> Any:
        fixture = SimpleNamespace(scope=self.scope)
        return SimpleNamespace(name2fixturedefs={"f": [fixture]})

    def add_marker(self, mark: Any) -> None:
        self.marks.append(mark)


def test_longest_first_and_a_module_fixtures_tests_as_one_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    known = {"tests/e2e/a.py::x": 3.0, "tests/e2e/b.py::y": 9.0, "tests/e2e/m.py::one": 5.0,
             "tests/e2e/m.py::two": 5.0, "tests/unit/u.py::z": 0.1}  # fmt: skip
    monkeypatch.setattr(schedule, "_known", lambda: known)
    items: list[Any] = [
        _Item("tests/unit/u.py::z"),
        _Item("tests/e2e/a.py::x"),
        _Item("tests/e2e/m.py::one", "module"),
        _Item("tests/e2e/b.py::y"),
        _Item("tests/e2e/m.py::two", "module"),
        _Item("tests/e2e/new.py::w"),  # not recorded: an end-to-end test counts as a few seconds
    ]
    schedule.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == [
        "tests/e2e/m.py::one", "tests/e2e/m.py::two",  # 10 s together, kept together
        "tests/e2e/b.py::y", "tests/e2e/new.py::w", "tests/e2e/a.py::x", "tests/unit/u.py::z",
    ]  # fmt: skip
    grouped = [i.nodeid for i in items if any(m.name == "xdist_group" for m in i.marks)]
    assert grouped == ["tests/e2e/m.py::one", "tests/e2e/m.py::two"]
    assert items[0].marks[0].args == ("tests/e2e/m.py",)
