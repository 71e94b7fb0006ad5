"""The order `make test` hands tests to its pytest-xdist workers: longest first, by the seconds each took
in a recorded run (tests/durations.json), so the last to start on either worker are short ones and neither
waits on the other at the end. Tests that share a module-scoped fixture (a build, a torchrun job) go to one
worker as one unit (`--dist loadgroup`), costed at their sum, so the fixture is made once.

`make test-durations` records the file again (after tests were added or got slower); a test not in it
counts as a few seconds when end to end, else as a fraction of one. The order changes nothing else: every
test runs, and each is independent of the others' order.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
"""{test node id: seconds of set-up, call and tear-down} of a recorded run."""
RECORD = "CHIPBENCH_RECORD_DURATIONS"
"""Set (to anything) to write DURATIONS at the end of the session."""
UNKNOWN_S = {"e2e": 5.0, "unit": 0.2}
"""What a test not yet recorded counts as, by folder."""


def _known() -> dict[str, float]:
    try:
        data = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else []
    return any(d and d[-1].scope in ("module", "class", "package") for d in defs)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = _known()
    units: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        module = item.nodeid.split("::")[0]
        unit = module if _shares_a_module_fixture(item) else item.nodeid
        units[unit].append(item)
        if unit == module:
            item.add_marker(pytest.mark.xdist_group(module))

    def cost(unit: list[pytest.Item]) -> float:
        return sum(known.get(i.nodeid, UNKNOWN_S["e2e" if "/e2e/" in i.nodeid else "unit"]) for i in unit)

    # sorted() is stable: equal costs keep pytest's order
    items[:] = [i for unit in sorted(units.values(), key=cost, reverse=True) for i in unit]


class _Recorder:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid.split("@")[0]] += report.duration  # loadgroup appends @group

    def pytest_sessionfinish(self) -> None:
        merged = {**_known(), **{k: round(v, 2) for k, v in self.seconds.items()}}
        DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=0) + "\n")


def configure(config: pytest.Config) -> None:
    """Record the durations when asked: on the controller (or a run without workers), where the reports of
    every worker arrive."""
    if os.environ.get(RECORD) and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(_Recorder(), "chipbench-durations")
