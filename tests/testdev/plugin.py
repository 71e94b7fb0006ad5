"""Import this module to get the `chipdev` device: it builds (or loads from the cache) the C++ backend,
renames PrivateUse1 to `chipdev`, registers this module as `torch.chipdev` (the device module) and
generates the Tensor/Module helpers (`Tensor.chipdev()`, `Tensor.is_chipdev`).

    PYTHONPATH=. chipbench run calib.matmul --suite smoke --device chipdev --device-plugin tests.testdev.plugin

Random numbers: every op runs through the CPU fallback, so they come from torch's CPU generator, which
torch.manual_seed seeds; manual_seed_all here has nothing more to seed.
"""

from __future__ import annotations

import sys

import torch

from tests.testdev import build as _build

NAME = "chipdev"
BUILT = _build.build()
"""How the library was got this time (path, seconds, from the cache or not)."""

torch.utils.rename_privateuse1_backend(NAME)
torch._register_device_module(NAME, sys.modules[__name__])
torch.utils.generate_methods_for_privateuse1_backend()


def _index(device: torch.device | str | int | None) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    d = torch.device(device)
    return current_device() if d.index is None else d.index


def is_available() -> bool:
    return True


def device_count() -> int:
    return int(torch.ops.chipdev.device_count())


def current_device() -> int:
    return torch.accelerator.current_device_index()


def set_device(device: torch.device | str | int) -> None:
    torch.accelerator.set_device_index(_index(device))


def synchronize(device: torch.device | str | int | None = None) -> None:
    torch.accelerator.synchronize(_index(device))


def memory_allocated(device: torch.device | str | int | None = None) -> int:
    return int(torch.ops.chipdev.memory_stats(_index(device))[0])


def max_memory_allocated(device: torch.device | str | int | None = None) -> int:
    return int(torch.ops.chipdev.memory_stats(_index(device))[1])


def reset_peak_memory_stats(device: torch.device | str | int | None = None) -> None:
    torch.ops.chipdev.reset_peak(_index(device))


def mem_get_info(device: torch.device | str | int | None = None) -> tuple[int, int]:
    return torch.accelerator.get_memory_info(_index(device))


def empty_cache() -> None:
    """Nothing is cached: each block goes back to the host when its tensor dies."""


def _is_in_bad_fork() -> bool:
    return False


def manual_seed_all(seed: int) -> None:
    """Nothing to seed: the CPU fallback draws from torch's CPU generator (seeded by torch.manual_seed)."""
