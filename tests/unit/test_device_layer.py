"""The device layer over torch.accelerator: any registered device type, plugins imported first, and every
capability probed with its source; a device registered from Python alone (PrivateUse1, no kernels) has
every capability missing, each recorded with its reason, and `run` refuses it in one line."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from chipbench.core.errors import UsageError
from chipbench.execution import process_groups, worker
from chipbench.platform import capabilities, device, hardware
from chipbench.workloads.llama.compiling import choose_compile
from chipbench.workloads.llama.optimizer import adamw_impl

NAME = "cbnokernels"
"""The PrivateUse1 name of the test device (torch allows one rename per process)."""


@pytest.fixture
def nokernels() -> Iterator[types.ModuleType]:
    """A device registered from Python alone: a renamed PrivateUse1 and a device module, no kernels.
    Available only while the test runs (torch.accelerator asks the module), so later tests see a CPU."""
    current = torch._C._get_privateuse1_backend_name()
    if current not in ("privateuseone", NAME):
        pytest.skip(f"PrivateUse1 is already {current!r} in this process (one rename per process)")
    if current != NAME:
        torch.utils.rename_privateuse1_backend(NAME)
    mod = getattr(torch, NAME, None)
    if mod is None:
        mod = types.ModuleType(NAME)
        mod.AVAILABLE = False  # type: ignore[attr-defined]
        mod.is_available = lambda: mod.AVAILABLE  # type: ignore[attr-defined]
        mod.device_count = lambda: int(mod.AVAILABLE)  # type: ignore[attr-defined]
        mod.current_device = lambda: 0  # type: ignore[attr-defined]
        torch._register_device_module(NAME, mod)
    mod.AVAILABLE = True  # type: ignore[attr-defined]
    try:
        yield mod
    finally:
        mod.AVAILABLE = False  # type: ignore[attr-defined]


def test_a_python_only_device_records_every_missing_capability(nokernels: types.ModuleType) -> None:
    assert hardware.available_kinds() == ["cpu", NAME]
    assert hardware.resolve_device("auto") == NAME
    caps = capabilities.probe(NAME)
    assert set(caps) == set(capabilities.PROBES)
    for name, cap in caps.items():
        assert cap["source"] == "fallback" and cap["detail"], (name, cap)
    assert caps["timer"]["value"] == "sync+perf_counter" and "torch.Event" in caps["timer"]["detail"]
    assert caps["peak_memory"]["value"].startswith("unavailable: ")
    assert caps["memory_info"]["value"].startswith("unavailable: ")
    assert caps["autocast"]["value"] == "none"
    assert caps["adamw"]["value"] == "foreach" and adamw_impl("auto", NAME) == "foreach"
    assert caps["dist_backend"]["value"] == "gloo" and process_groups.backend_for(NAME) == "gloo"
    assert caps["compile"]["value"] == "off" and "compile=auto runs eager" in caps["compile"]["detail"]
    chose = choose_compile("auto", 1e15, NAME)
    assert not chose.on and "inductor has no code generator" in chose.why
    dev = device.Device(NAME)
    assert dev.timer_name == "sync+perf_counter" and not dev.events
    peak, source = dev.peak_memory()
    assert peak is None and source.startswith("unavailable: ")


def test_run_refuses_a_device_without_kernels_in_one_line(nokernels: types.ModuleType) -> None:
    with pytest.raises(UsageError, match=f"device '{NAME}' cannot run a tensor operation") as got:
        worker.hello(NAME)
    assert "\n" not in str(got.value)


def test_a_plugin_is_imported_before_the_device_is_resolved(
    nokernels: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nokernels.AVAILABLE = False  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="not available here; available: cpu"):
        hardware.resolve_device(NAME)
    plugin = "cb_test_device_plugin"
    (tmp_path / f"{plugin}.py").write_text(f"import torch\ntorch.{NAME}.AVAILABLE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(device.PLUGINS_ENV, f" {plugin}, ")
    try:
        assert hardware.resolve_device(NAME) == NAME
    finally:
        sys.modules.pop(plugin, None)


def test_a_plugin_that_fails_to_import_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(device.PLUGINS_ENV, "cb_no_such_plugin")
    with pytest.raises(UsageError, match="device plugin 'cb_no_such_plugin' failed to import") as got:
        hardware.resolve_device("cpu")
    assert "\n" not in str(got.value)
    assert device.plugin_modules(["a", "cb_no_such_plugin", "b"]) == ["cb_no_such_plugin", "a", "b"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("tpu", "lazily evaluated backend"),
        ("xla", "lazily evaluated backend"),
        ("neuron", "lazily evaluated backend"),
        ("nosuch", "unknown device 'nosuch': torch knows no such device type"),
        ("hpu", "device 'hpu' is not available here; available: cpu"),
    ],
)
def test_devices_that_cannot_run_here_are_one_line(name: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as got:
        hardware.resolve_device(name, ["cpu"])
    assert "\n" not in str(got.value)


def test_the_accelerator_torch_reports_is_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda check_available=False: torch.device("cuda")
    )
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert hardware.available_kinds() == ["cpu", "rocm"]
    assert hardware.resolve_device("cuda") == "rocm" and hardware.resolve_device("auto") == "rocm"
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda check_available=False: torch.device("xpu")
    )
    assert hardware.resolve_device("auto") == "xpu"


@pytest.mark.parametrize(
    ("kind", "events", "timer"),
    [
        ("cuda", True, "cuda-events"),
        ("rocm", True, "hip-events"),
        ("xpu", True, "xpu-events"),
        ("npu", True, "npu-events"),
        ("npu", False, "sync+perf_counter"),
        ("cpu", False, "perf_counter"),
    ],
)
def test_timer_names_follow_the_event_probe(
    monkeypatch: pytest.MonkeyPatch, kind: str, events: bool, timer: str
) -> None:
    monkeypatch.setattr(device, "probe_events", lambda k: device.Probe(events, "probed"))
    dev = device.Device(kind)
    assert dev.timer_name == timer and dev.events is events


def test_peak_memory_reads_torch_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        device, "probe_peak_memory", lambda k: device.Probe(True, "torch.accelerator.max_memory_allocated")
    )
    monkeypatch.setattr(torch.accelerator, "reset_peak_memory_stats", lambda *a: calls.append("reset"))
    monkeypatch.setattr(torch.accelerator, "max_memory_allocated", lambda *a: 7 * 2**20)
    dev = device.Device("npu")
    dev.reset_peak_memory()
    assert calls == ["reset"] and dev.peak_memory() == (7 * 2**20, "torch.accelerator.max_memory_allocated")


def test_the_process_group_backend_is_torchs_default_or_gloo_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch.distributed as dist

    assert capabilities.backend_choice("cpu") == ("gloo", "torch.distributed.get_default_backend_for_device")
    monkeypatch.setattr(dist, "get_default_backend_for_device", lambda d: {"cuda": "nccl"}[d])
    assert process_groups.backend_for("rocm") == "nccl"
    backend, why = capabilities.backend_choice("npu")
    assert backend == "gloo" and why.startswith("fallback: KeyError")


def test_the_cpu_records_every_capability_with_its_source() -> None:
    caps = capabilities.probe("cpu")
    assert {k: c["value"] for k, c in caps.items() if k in ("timer", "adamw", "dist_backend")} == {
        "timer": "perf_counter", "adamw": "fused", "dist_backend": "gloo",
    }  # fmt: skip
    assert all(c["source"] in ("generic", "vendor", "fallback") and c["detail"] for c in caps.values())
    assert caps["memory_info"]["free_bytes"] > 0


def test_env_shows_every_capability_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from chipbench.cli.app import main

    assert main(["env", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)["capabilities"]
    assert set(caps) == set(capabilities.PROBES) and all("source" in c for c in caps.values())
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert all(f"capabilities.{name}" in out for name in capabilities.PROBES)
