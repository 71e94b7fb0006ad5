"""The accelerator paths, proven as far as a CPU can: cache emptying order, which errors restart the
worker, TF32 and the peak it is measured against, peak-table matching."""

from __future__ import annotations

from typing import Any

import pytest

from chipbench.execution.worker import error_reply
from chipbench.measure import engine
from chipbench.platform import device, peaks


def test_garbage_and_cache_go_before_the_peak_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class FakeDevice(device.Device):
        def reset_peak_memory(self) -> None:
            calls.append("reset")

        def peak_memory(self) -> tuple[int | None, str]:
            return 0, "fake"

    monkeypatch.setattr(engine.gc, "collect", lambda *a: calls.append("collect") or 0)
    engine.measure(lambda: None, FakeDevice("cpu"), engine.MeasureOptions(time_budget_s=0.01, min_rounds=1))
    assert calls.index("collect") < calls.index("reset")


def test_release_cached_collects_then_empties_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[str] = []
    monkeypatch.setattr(device.gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(torch.accelerator, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(device, "probe_peak_memory", lambda kind: device.Probe(True, "fake allocator"))
    device.release_cached("cuda")
    assert calls == ["collect", "empty_cache"]
    calls.clear()
    device.release_cached("cpu")
    assert calls == ["collect"]
    calls.clear()  # an allocator torch cannot reach: nothing to empty
    monkeypatch.setattr(device, "probe_peak_memory", lambda kind: device.Probe(False, "no allocator"))
    device.release_cached("npu")
    assert calls == ["collect"]


@pytest.mark.parametrize(
    ("exc", "kind", "restart"),
    [
        (RuntimeError("CUDA error: an illegal memory access was encountered"), "device_error", True),
        (RuntimeError("CUDA error: device-side assert triggered"), "device_error", True),
        (RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx"), "device_error", True),
        (RuntimeError("NCCL error in: ProcessGroupNCCL.cpp, unhandled cuda error"), "device_error", True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom", True),
        (ValueError("lookups must be >= 1"), "ValueError", False),
    ],
)
def test_which_errors_restart_the_worker(exc: Exception, kind: str, restart: bool) -> None:
    try:
        raise exc
    except Exception as e:
        reply: dict[str, Any] = dict(error_reply(e))
    assert reply["error_type"] == kind and reply["restart"] is restart


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
        ("AMD Instinct MI300X", "MI300X"),
        ("NVIDIA L4", "L4"),
        # Not in the reference table: no peak (the measured ceiling stands in), never a sibling's figure.
        ("NVIDIA H100 NVL", None),
        ("NVIDIA H200 NVL", None),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA A100-SXM4-40GB", None),
        ("NVIDIA L40S", None),
        ("AMD EPYC", None),
    ],
)
def test_every_peak_row_and_its_near_misses(name: str, expect: str | None) -> None:
    got = peaks.lookup(name)
    assert (got.name if got else None) == expect


def test_tf32_is_measured_against_the_tf32_peak() -> None:
    from chipbench.core.contract import Work
    from chipbench.results.metrics import Setting, derive_metrics

    st = {"p50": 1.0, "p90": 1.0, "p99": 1.0}
    work = Work(flops=100e12, model_flops=True)
    fp32_setting = Setting("NVIDIA H100 80GB HBM3", "fp32", None)
    tf32_setting = Setting("NVIDIA H100 80GB HBM3", "fp32", None, tf32=True)
    fp32 = derive_metrics(work, 1.0, st, fp32_setting, peak_mem_bytes=None).metrics
    tf32 = derive_metrics(work, 1.0, st, tf32_setting, peak_mem_bytes=None).metrics
    assert fp32["mfu"] == pytest.approx(100 / 66.9) and tf32["mfu"] == pytest.approx(100 / 494.7)


def test_tf32_setting_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    from chipbench.platform import hardware

    monkeypatch.delenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", raising=False)
    assert hardware.tf32_info("cpu") == {"effective": False, "reason": "TF32 applies to NVIDIA GPUs only"}
    monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
    got = hardware.tf32_info("cuda")
    assert got["effective"] is True and "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in got["reason"]


def test_fp32_grouped_query_attention_counts_its_score_matrices() -> None:
    from chipbench import workloads

    b = workloads.get("llama.attention")
    ov = {"flavor": "llama3-8b", "seq_len": 8192, "batch_size": 1, "mode": "fwd"}
    fp32 = b.describe(b.config({**ov, "dtype": "fp32"}))
    bf16 = b.describe(b.config({**ov, "dtype": "bf16"}))
    scores = 1 * 32 * 8192 * 8192 * 4 * 2  # B x H x T^2 fp32 scores and softmax
    assert fp32.facts["score_matrix_bytes"] == scores and "score_matrix_bytes" not in bf16.facts
    assert fp32.memory_bytes_estimate is not None and fp32.memory_bytes_estimate > scores
    train = workloads.get("llama.train_step")
    cfg = {"flavor": "llama3-8b", "n_layers": 2, "seq_len": 2048}
    extra = train.describe(train.config({**cfg, "dtype": "fp32"})).memory_bytes_estimate
    same = train.describe(train.config({**cfg, "dtype": "fp32", "n_kv_heads": 32})).memory_bytes_estimate
    assert extra is not None and same is not None and extra > same  # GQA adds the score matrices per layer


def test_compile_without_a_compiler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from chipbench.core.errors import UsageError
    from chipbench.workloads.common import check_compiler

    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="compile=true needs a C compiler"):
        check_compiler()


def test_tables_fitted_to_a_gpu_use_more_of_its_memory() -> None:
    from chipbench.workloads import dlrm

    cfg = dlrm.DLRMConfig(preset="dcnv2", max_rows=-1, batch_size=256)
    free = 80 * 2**30
    cpu, gpu = dlrm.fit(cfg, free, "cpu")["max_rows"], dlrm.fit(cfg, free, "cuda")["max_rows"]
    assert gpu > cpu > 0
    assert (
        dlrm.arithmetic(dlrm.DLRMConfig(preset="dcnv2", max_rows=gpu, batch_size=256)).memory_bytes
        <= 0.5 * free
    )
