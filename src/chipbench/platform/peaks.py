"""Published dense peak figures (no sparsity) per accelerator, from `shared/reference.md`.

An unknown device has no peak: the lookup returns None with a reason, and callers fall back to the
measured ceiling (`chipbench calibrate`), never to another chip's figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Peak:
    """Dense peak rates of one device model."""

    name: str
    """Canonical device model name."""
    tflops: dict[str, float]
    """Dense TFLOP/s per dtype name (bf16, fp16, tf32, fp32)."""
    mem_tbps: float
    """Memory bandwidth in TB/s."""


# The first pattern that matches the lower-cased device name wins; each names its word exactly, so a
# sibling without a row (H100 NVL, H200 NVL, GH200, A100 40GB or PCIe, L40S) gets no peak rather than a
# neighbour's figure: only the rows of shared/reference.md are known.
_PEAKS: list[tuple[re.Pattern[str], Peak]] = [
    (re.compile(r"\bh100\b.*\bpcie\b"), Peak("H100 PCIe", {"bf16": 756, "fp16": 756, "tf32": 378, "fp32": 51.2}, 2.0)),
    (re.compile(r"\bh100\b(?!.*\b(nvl|pcie)\b)"),
     Peak("H100 SXM", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 3.35)),
    (re.compile(r"\bh200\b(?!.*\bnvl\b)"),
     Peak("H200 SXM", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 4.8)),
    (re.compile(r"\ba100\b(?!.*pcie).*\b80gb\b"),
     Peak("A100 SXM 80GB", {"bf16": 312, "fp16": 312, "tf32": 156, "fp32": 19.5}, 2.039)),
    (re.compile(r"\bmi300x\b"), Peak("MI300X", {"bf16": 1307.4, "fp16": 1307.4, "tf32": 653.7, "fp32": 163.4}, 5.3)),
    (re.compile(r"\bl4\b"), Peak("L4", {"bf16": 121, "fp16": 121, "tf32": 60, "fp32": 30.3}, 0.3)),
]  # fmt: skip


def lookup(device_name: str) -> Peak | None:
    """The published peak of a device model, or None when it is not in the table."""
    low = device_name.lower().replace("-", " ")
    for pattern, peak in _PEAKS:
        if pattern.search(low):
            return peak
    return None


def peak_tflops(device_name: str, dtype: str, tf32: bool = False) -> tuple[float | None, str]:
    """(peak TFLOP/s, reason) for a device and dtype; the value is None when unknown, with the reason."""
    peak = lookup(device_name)
    if peak is None:
        return None, f"no published peak for {device_name!r}"
    key = "tf32" if dtype == "fp32" and tf32 else dtype
    if key not in peak.tflops:
        return None, f"no published {key} peak for {peak.name}"
    return float(peak.tflops[key]), f"published dense {key} peak of {peak.name}"


def peak_mem_gbps(device_name: str) -> tuple[float | None, str]:
    """(peak memory GB/s, reason); None when the device is not in the table."""
    peak = lookup(device_name)
    if peak is None:
        return None, f"no published memory bandwidth for {device_name!r}"
    return peak.mem_tbps * 1000.0, f"published memory bandwidth of {peak.name}"
