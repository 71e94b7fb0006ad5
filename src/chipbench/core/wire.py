"""Names for the plain JSON objects that cross a process boundary (the worker's pipe) or are written to a
results file as they are. Each is free-form by design; where a structure is fixed, a dataclass or a
TypedDict says it instead (RunOptions, MeasurementExtra, the protocol's messages)."""

from __future__ import annotations

from typing import Any

Overrides = dict[str, Any]
"""Config field -> value: from `--set`, a suite, a preset or a fit; sent to the worker in the run message
and written back as the result's config."""

Info = dict[str, Any]
"""Facts a benchmark's set-up or after-rounds pass records: the result's `extra_info`, as JSON."""

Environment = dict[str, Any]
"""platform.hardware.environment(): device, CPU, stack, commit (+ `distributed` for a job); sent in the
worker's hello and written whole to the results file."""
