from __future__ import annotations

from typing import Any

import pytest

from chipbench import workloads
from chipbench.core.contract import Work
from chipbench.core.errors import UsageError
from chipbench.platform import hardware, peaks
from chipbench.platform.ceilings import Ceilings
from chipbench.results.metrics import Setting, derive_metrics


def _env(
    kind: str = "cpu", isa: dict[str, bool] | None = None, capability: str | None = None, name: str = "X"
) -> dict[str, Any]:
    flags = dict.fromkeys(hardware.ISA_FLAGS, False)
    flags.update(isa or {})
    return {
        "device": {"kind": kind, "name": name, "count": 1, "capability": capability},
        "cpu": {"model": "Some CPU", "arch": "x86_64", "logical_cores": 2, "isa": flags},
    }


def test_auto_dtype_fp32_on_cpu_without_bf16_units() -> None:
    # The project's reference CPU (AVX2 + FMA, no AVX-512, no AMX): bf16 is emulated, ~100x slower.
    assert hardware.auto_dtype(_env(isa={"avx2": True, "fma": True}))[0] == "fp32"


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_dtype_bf16_on_cpu_with_bf16_units(flag: str) -> None:
    assert hardware.auto_dtype(_env(isa={flag: True}))[0] == "bf16"


@pytest.mark.parametrize(("cap", "want"), [("8.0", "bf16"), ("9.0", "bf16"), ("7.5", "fp32")])
def test_auto_dtype_cuda_by_capability(cap: str, want: str) -> None:
    assert hardware.auto_dtype(_env("cuda", capability=cap))[0] == want


def test_auto_dtype_measured_ceiling_wins() -> None:
    env = _env(isa={"avx512_bf16": True})
    ceilings = Ceilings("m", matmul_tflops={"fp32": 0.2, "bf16": 0.05})
    assert hardware.auto_dtype(env, ceilings)[0] == "fp32"


def test_resolve_device_and_dtype_errors() -> None:
    with pytest.raises(UsageError, match="not available here"):
        hardware.resolve_device("cuda", ["cpu"])
    with pytest.raises(UsageError, match="unknown device 'nosuch'"):
        hardware.resolve_device("nosuch", ["cpu"])
    with pytest.raises(UsageError, match="lazily evaluated backend"):
        hardware.resolve_device("tpu", ["cpu"])
    with pytest.raises(UsageError, match="unknown dtype"):
        hardware.resolve_dtype("int3", _env())
    assert hardware.resolve_device("auto", ["cpu", "cuda"]) == "cuda"
    assert hardware.resolve_device("cuda", ["cpu", "rocm"]) == "rocm"


def test_machine_id_includes_device_model() -> None:
    env = _env("cuda", capability="9.0", name="NVIDIA H100 80GB HBM3")
    mid = hardware.machine_id(env)
    assert mid.startswith("cuda-nvidia-h100-80gb-hbm3-x1") and "some-cpu" in mid
    assert hardware.machine_id(_env()) == "cpu-some-cpu-2c-base"


def test_cpu_machine_id_separates_isa_tiers() -> None:
    # A VM reports "AMD EPYC" for an AVX2 host and an AVX-512 BF16 host alike; their baselines differ.
    avx2 = hardware.machine_id(_env(isa={"avx2": True, "fma": True}))
    bf16 = hardware.machine_id(_env(isa={"avx2": True, "avx512f": True, "avx512_bf16": True}))
    assert (avx2, bf16) == ("cpu-some-cpu-2c-avx2", "cpu-some-cpu-2c-avx512bf16")


def test_peak_table() -> None:
    assert peaks.peak_tflops("NVIDIA H100 80GB HBM3", "bf16")[0] == 989.4
    assert peaks.peak_tflops("NVIDIA H100 PCIe", "bf16")[0] == 756
    assert peaks.peak_tflops("NVIDIA H200", "fp32")[0] == 66.9
    assert peaks.peak_tflops("AMD Instinct MI300X", "bf16")[0] == 1307.4
    value, why = peaks.peak_tflops("AMD EPYC", "fp32")
    assert value is None and "no published peak" in why
    assert peaks.peak_mem_gbps("NVIDIA H200")[0] == pytest.approx(4800)


def test_unknown_peak_is_absent_with_reason() -> None:
    work = Work(flops=2e12, bytes=1e9, model_flops=True)
    st = {"p50": 1.0, "p90": 1.0, "p99": 1.0}
    m, missing = derive_metrics(work, 1.0, st, Setting("Mystery Chip", "bf16", None), peak_mem_bytes=None)
    assert m["tflops"] == pytest.approx(2.0) and m["gbps"] == pytest.approx(1.0)
    assert "mfu" not in m and "no published peak" in missing["mfu"]
    assert "calibrate" in missing["share_of_ceiling_flops"]
    ceil = Ceilings("m", matmul_tflops={"bf16": 800.0}, copy_gbps=3000.0)
    m, missing = derive_metrics(
        work, 1.0, st, Setting("NVIDIA H100 80GB HBM3", "bf16", ceil), peak_mem_bytes=2**30
    )
    assert m["mfu"] == pytest.approx(2.0 / 989.4)
    assert m["share_of_ceiling_flops"] == pytest.approx(2.0 / 800)
    assert m["share_of_ceiling_bw"] == pytest.approx(1.0 / 3000)
    assert m["peak_mem_gib"] == 1.0 and not missing


def test_a_step_within_the_last_level_cache_has_no_bandwidth_share() -> None:
    """calib.copy[size_mib=16] moves 32 MiB a step: within this EPYC's 32 MiB L3 it ran at 103-112% of the
    copy ceiling (measured on 512 MiB buffers). Within the cache no memory ceiling bounds a step."""
    st = {"p50": 1.0, "p90": 1.0, "p99": 1.0}
    ceil = Ceilings("m", matmul_tflops={}, copy_gbps=30.0)
    l3 = 32 * 2**20
    inside = Setting("NVIDIA H100 80GB HBM3", None, ceil, cache_bytes=l3)
    m, missing = derive_metrics(Work(bytes=float(l3)), 1e-3, st, inside, peak_mem_bytes=None)
    assert (
        m["gbps"] == pytest.approx(l3 / 1e6)
        and "share_of_ceiling_bw" not in m
        and "share_of_peak_bw" not in m
    )
    assert "32 MiB last-level cache" in missing["share_of_ceiling_bw"] == missing["share_of_peak_bw"]
    m, missing = derive_metrics(Work(bytes=2.0 * l3), 1e-3, st, inside, peak_mem_bytes=None)
    assert m["share_of_ceiling_bw"] == pytest.approx(2 * l3 / 1e6 / 30.0) and "share_of_peak_bw" in m


def test_environment_reports_stack() -> None:
    env = hardware.environment("cpu")
    assert env["device"]["kind"] == "cpu" and env["packages"]["torch"]
    llc = env["device"]["last_level_cache_bytes"]
    assert llc is None or 2**16 <= llc < 2**34
    assert set(hardware.ISA_FLAGS) <= set(env["cpu"]["isa"])
    assert env["chipbench"]["commit"]


def test_benchmark_auto_dtype_policy() -> None:
    env = _env(isa={"avx512_bf16": True})
    device_choice = hardware.auto_dtype(env)
    assert workloads.get("calib.matmul").resolve_auto_dtype("cpu", device_choice)[0] == "bf16"
    dtype, why = workloads.get("dlrm.train_step").resolve_auto_dtype("cpu", device_choice)
    assert dtype == "fp32" and "dlrm.train_step" in why
    gpu = hardware.auto_dtype(_env("cuda", capability="9.0"))
    assert workloads.get("dlrm.train_step").resolve_auto_dtype("cuda", gpu)[0] == "bf16"
