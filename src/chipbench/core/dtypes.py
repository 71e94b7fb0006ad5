"""Dtype names as configs and results spell them, and their sizes (torch's dtypes: platform.device)."""

from __future__ import annotations

from typing import Literal

DType = Literal["auto", "fp32", "bf16", "fp16"]
"""A config's dtype field: auto is resolved per device before a case runs."""
ConcreteDType = Literal["fp32", "bf16", "fp16"]

DTYPES: tuple[ConcreteDType, ...] = ("fp32", "bf16", "fp16")
DTYPE_CHOICES = ("auto", *DTYPES)

BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2}


def bytes_per_element(name: str) -> int:
    """Bytes of one element of dtype `name` (fp32's 4 for auto, which runs in fp32 until resolved)."""
    return BYTES_PER_ELEMENT.get(name, 4)
