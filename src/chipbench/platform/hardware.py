"""Hardware and software-stack detection: devices, CPU features, versions, machine id, dtype choice."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any, TypedDict

from chipbench.core.dtypes import DTYPE_CHOICES
from chipbench.core.errors import UsageError
from chipbench.core.wire import Environment, Info
from chipbench.platform import allocator, capabilities
from chipbench.platform import device as devices
from chipbench.platform.ceilings import Ceilings

# Flags that decide what a CPU runs well; reported by `chipbench env`.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "asimd",
    "sve",
    "bf16",
)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def available_kinds() -> list[str]:
    """Device kinds usable in this process: the CPU first, then the accelerator torch reports, if any."""
    acc = devices.accelerator()
    return ["cpu", acc] if acc else ["cpu"]


def resolve_device(requested: str, kinds: list[str] | None = None) -> str:
    """Map a `--device` name to an available kind, or raise a one-line UsageError. The device plugins
    ($CHIPBENCH_DEVICE_PLUGINS) are imported first: a backend registers its device type with torch."""
    devices.load_plugins()
    if kinds is None:
        kinds = available_kinds()
    if requested == "auto":
        return kinds[-1]
    if requested == "cuda" and "rocm" in kinds:
        return "rocm"  # ROCm builds of torch expose AMD GPUs through the cuda API.
    if requested in kinds:
        return requested
    lazy = devices.LAZY_BACKENDS.get(requested)
    if lazy:
        raise UsageError(
            f"device {requested!r} is {lazy}, a lazily evaluated backend without torch.accelerator "
            "support: chipbench cannot time its steps"
        )
    import torch

    try:
        torch.device(devices.device_type(requested))
    except (RuntimeError, ValueError):
        raise UsageError(
            f"unknown device {requested!r}: torch knows no such device type; a backend's plugin "
            "registers one (--device-plugin MODULE); available here: " + ", ".join(kinds)
        ) from None
    raise UsageError(f"device {requested!r} is not available here; available: {', '.join(kinds)}")


class CpuInfo(TypedDict):
    """The results' environment `cpu` (a JSON object)."""

    model: str
    arch: str
    physical_cores: int | None
    logical_cores: int | None
    isa: dict[str, bool]
    """Each of ISA_FLAGS: whether the CPU has it."""


class Tf32(TypedDict):
    """The results' environment `tf32` (a JSON object)."""

    effective: bool
    """fp32 matmuls run as TF32."""
    reason: str


@functools.cache
def cpu_info() -> CpuInfo:
    """CPU model, core counts and the ISA features that matter for ML kernels."""
    import psutil

    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            model = m.group(1).strip()
        fm = re.search(r"^(flags|Features)\s*:\s*(.+)$", text, re.M)
        if fm:
            flags = set(fm.group(2).split())
    except OSError:
        if platform.system() == "Darwin":
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                model = subprocess.run(
                    ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
                ).stdout.strip()
            if platform.machine() == "arm64":
                flags = {"asimd", "bf16"}
    return {
        "model": model,
        "arch": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False) or os.cpu_count(),
        "logical_cores": psutil.cpu_count(logical=True) or os.cpu_count(),
        "isa": {f: (f in flags) for f in ISA_FLAGS},
    }


def cpu_last_level_cache_bytes() -> int | None:
    """The largest cache one core reaches (Linux sysfs: L3 of its complex, else L2); None where unknown.
    Not `getconf`: on a VM it can report the host's, 8x this one's (256 against 32 MiB on this EPYC)."""
    sizes = []
    for d in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (d / "type").read_text().strip() in ("Unified", "Data"):
                m = re.fullmatch(r"(\d+)([KMG]?)", (d / "size").read_text().strip())
                if m:
                    sizes.append(int(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " "))
        except OSError:
            continue
    return max(sizes) if sizes else None


def device_info(kind: str) -> Info:
    """Name, count, memory and versions of the accelerator of `kind` (or of the CPU)."""
    import psutil
    import torch

    info: Info = {"kind": kind}
    if kind == "cpu":
        cpu = cpu_info()
        info.update(
            name=cpu["model"],
            count=1,
            memory_bytes=psutil.virtual_memory().total,
            threads=torch.get_num_threads(),
            capability=torch.backends.cpu.get_cpu_capability(),
            last_level_cache_bytes=cpu_last_level_cache_bytes(),
        )
    elif kind in ("cuda", "rocm"):
        props = torch.cuda.get_device_properties(0)
        info.update(
            name=props.name,
            count=torch.cuda.device_count(),
            memory_bytes=props.total_memory,
            capability=getattr(props, "gcnArchName", None)
            if kind == "rocm"
            else f"{props.major}.{props.minor}",
            runtime=torch.version.hip if kind == "rocm" else torch.version.cuda,
            driver=_nvidia_driver() if kind == "cuda" else None,
            multiprocessors=props.multi_processor_count,
            last_level_cache_bytes=getattr(props, "L2_cache_size", None) or None,
        )
    elif kind == "mps":
        info.update(
            name=f"Apple {cpu_info()['model']} GPU", count=1, memory_bytes=psutil.virtual_memory().total
        )
    else:  # any other accelerator: what torch's device module tells, best effort
        info.update(_generic_device_info(kind))
    return info


def _generic_device_info(kind: str) -> Info:
    """Name, count, memory and driver of an accelerator through torch.get_device_module: each field the
    backend's module offers (xpu's, and out-of-tree backends' modelled on torch.cuda), else unknown."""
    import torch

    info: Info = {"name": "unknown", "count": 0, "memory_bytes": None}
    try:
        info["count"] = int(torch.accelerator.device_count())
        mod = torch.get_device_module(devices.device_type(kind))
        props = mod.get_device_properties(0) if hasattr(mod, "get_device_properties") else None
        name = getattr(props, "name", None) or (
            mod.get_device_name(0) if hasattr(mod, "get_device_name") else None
        )
    except Exception as exc:  # a backend without these: its results say so
        info["name_unknown"] = devices.one_line(exc)
        return info
    info["name"] = str(name) if name else "unknown"
    info["memory_bytes"] = getattr(props, "total_memory", None)
    info["driver"] = getattr(props, "driver_version", None)
    return info


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def free_memory_bytes(kind: str) -> int:
    """Memory free on the device now (available RAM for the CPU and where the device's is unknown)."""
    import psutil

    if kind not in devices.HOST_MEMORY:
        with contextlib.suppress(Exception):  # no memory info: the capability probe records why
            import torch

            return int(torch.accelerator.get_memory_info()[0])
    return int(psutil.virtual_memory().available)


def package_versions() -> dict[str, str | None]:
    """Versions of the ML stack (None when a package is absent or fails to load)."""
    from importlib import metadata

    import torch

    out: dict[str, str | None] = {
        "torch": str(torch.__version__)
    }  # a TorchVersion would import torch where unpickled
    for dist in ("fbgemm-gpu", "fbgemm-gpu-cpu", "torchrec", "numpy", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@functools.cache
def git_commit() -> dict[str, Any]:
    """Commit info of the chipbench checkout (pytest-benchmark's commit_info shape)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return {"id": "unknown", "dirty": False, "project": "chipbench", "branch": None, "time": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "id": sha,
        "time": git("show", "-s", "--format=%cI", "HEAD"),
        "author_time": git("show", "-s", "--format=%aI", "HEAD"),
        "dirty": bool(status),
        "project": "chipbench",
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def tf32_info(kind: str) -> Tf32:
    """Whether fp32 matmuls run as TF32 here, and why: torch's allow_tf32 and float32 matmul precision,
    or the TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 that NGC images set (it overrides both)."""
    if kind != "cuda":
        return {"effective": False, "reason": "TF32 applies to NVIDIA GPUs only"}
    import torch

    if os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1":
        return {"effective": True, "reason": "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 in the environment"}
    allow = bool(torch.backends.cuda.matmul.allow_tf32)
    precision = torch.get_float32_matmul_precision()
    on = allow or precision != "highest"
    return {"effective": on, "reason": f"torch allow_tf32={allow}, float32_matmul_precision={precision}"}


def environment(kind: str) -> Environment:
    """Everything a result needs to be compared fairly: device, CPU, software stack, commit."""
    import torch

    import chipbench

    return {
        "device": device_info(kind),
        "available_devices": available_kinds(),
        "cpu": cpu_info(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": package_versions(),
        "torch_build": {"cuda": torch.version.cuda, "hip": torch.version.hip, "debug": torch.version.debug},
        "chipbench": {"version": chipbench.__version__, "commit": git_commit()["id"]},
        "hostname": platform.node(),
        "tf32": tf32_info(kind),
        "host_allocator": allocator.state(),
        "capabilities": capabilities.probe(kind),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]


def machine_id(env: Environment) -> str:
    """A stable id for 'this kind of machine': device kind, model and count, plus the CPU model and cores.

    The hostname is left out on purpose: identical CI machines share baselines.
    """
    dev = env["device"]
    cpu = env["cpu"]
    cpu_part = f"{_slug(cpu['model'])}-{cpu['logical_cores']}c"
    if dev["kind"] == "cpu":
        # Virtual machines often report a bare family name ("AMD EPYC") for very different hosts; the
        # vector ISA tells them apart where it matters most (bf16 runs 100x slower without it).
        return f"cpu-{cpu_part}-{isa_tier(cpu.get('isa') or {})}"
    return f"{dev['kind']}-{_slug(dev['name'])}-x{dev['count']}-{cpu_part}"


def isa_tier(isa: dict[str, bool]) -> str:
    """The CPU's widest matrix/vector tier: amx, avx512bf16, avx512, avx2, sve, neon, or base."""
    for key, name in (("amx_bf16", "amx"), ("avx512_bf16", "avx512bf16"), ("avx512f", "avx512"),
                      ("avx2", "avx2"), ("sve", "sve"), ("asimd", "neon")):  # fmt: skip
        if isa.get(key):
            return name
    return "base"


def native_bf16(env: Environment) -> tuple[bool, str]:
    """Whether the device has native bf16 matrix units, and why we think so."""
    dev = env["device"]
    kind = dev["kind"]
    if kind == "cuda":
        major = int(str(dev.get("capability") or "0.0").split(".")[0])
        return major >= 8, f"compute capability {dev.get('capability')} ({'>=' if major >= 8 else '<'} 8.0)"
    if kind in ("rocm", "xpu"):
        return True, f"{kind} GPUs run bf16 natively"
    if kind == "mps":
        return False, "MPS bf16 support varies by macOS version"
    if kind != "cpu":  # another accelerator: what its autocast probe found
        low = str((env.get("capabilities") or {}).get("autocast", {}).get("value", "none"))
        bf16 = "bf16" in low.split(",")
        return bf16, f"{kind}: autocast {'runs' if bf16 else 'does not run'} bf16 matmuls (probed)"
    isa = env["cpu"]["isa"]
    if isa.get("amx_bf16") or isa.get("avx512_bf16"):
        return True, "CPU has AMX or avx512_bf16"
    if isa.get("bf16") and env["cpu"]["arch"] in ("aarch64", "arm64"):
        return True, "Arm CPU with BF16 instructions"
    return False, "CPU has no bf16 matrix instructions (no AMX, no avx512_bf16): bf16 would be emulated"


def auto_dtype(env: Environment, ceilings: Ceilings | None = None) -> tuple[str, str]:
    """(dtype, reason) for `--dtype auto`.

    A measured ceiling decides when `chipbench calibrate` stored both fp32 and bf16 matmul rates for this
    machine; otherwise bf16 where the hardware has native bf16 units, fp32 elsewhere.
    """
    matmul = ceilings.matmul_tflops if ceilings else {}
    if "fp32" in matmul and "bf16" in matmul:
        pick = "bf16" if matmul["bf16"] > matmul["fp32"] else "fp32"
        return pick, f"calibrated matmul: bf16 {matmul['bf16']:.3g} vs fp32 {matmul['fp32']:.3g} TFLOP/s"
    native, why = native_bf16(env)
    return ("bf16" if native else "fp32"), why


def resolve_dtype(requested: str, env: Environment, ceilings: Ceilings | None = None) -> tuple[str, str]:
    if requested not in DTYPE_CHOICES:
        raise UsageError(f"unknown dtype {requested!r}; choose one of {', '.join(DTYPE_CHOICES)}")
    if requested == "auto":
        return auto_dtype(env, ceilings)
    return requested, "requested"
