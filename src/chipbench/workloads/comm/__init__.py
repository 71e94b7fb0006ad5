"""Collective microbenchmarks: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast.

They run on the job's default process group (nccl on CUDA, gloo on CPU) under
`chipbench run --nproc-per-node N`, over a message-size sweep, and report bandwidth as NCCL's own
tests (nccl-tests, doc/PERFORMANCE.md) do:

- size S: the whole buffer of all_reduce and broadcast, the gathered output of all_gather, the input
  of reduce_scatter, each rank's send buffer of all_to_all;
- algorithm bandwidth `gbps` = S / t, with t each round's slowest rank (nccl-tests averages the
  ranks' times by default; the slowest is what a synchronous step waits for);
- bus bandwidth `gbps_busbw` = algbw x 2(n-1)/n for all_reduce, (n-1)/n for all_gather,
  reduce_scatter and all_to_all, 1 for broadcast: comparable with the link's peak whatever n is.

Each collective is checked for value once before it is timed (an all_reduce must sum). The timed
buffers hold random values; all_reduce works in place, so its buffer grows by n each step and
saturates at +-inf, which changes neither NCCL's nor gloo's speed (only denormals would, and growth
never makes them).
"""

from __future__ import annotations

from chipbench.core.registry import Benchmark, grid, register, suites
from chipbench.workloads.comm.config import OPS, CommConfig, bus_factor, describe
from chipbench.workloads.comm.setup import check_collective, make_setup

__all__ = ["OPS", "CommConfig", "bus_factor", "check_collective"]

_KIB = 1 << 10
SMOKE_SIZES = (4 * _KIB, 1 << 20)
DEFAULT_SIZES = tuple(_KIB * 8**i for i in range(7))  # 1 KiB .. 256 MiB, x8 apart
FULL_SIZES = tuple(_KIB * 4**i for i in range(11))  # 1 KiB .. 1 GiB, x4 apart

for _op in OPS:
    register(
        Benchmark(
            name=f"comm.{_op}",
            doc=f"torch.distributed {_op} over the job's processes; algorithm and bus bandwidth (nccl-tests).",
            config_cls=CommConfig,
            setup=make_setup(_op),
            describe=describe,
            suites=suites(*(grid(size_bytes=sizes) for sizes in (SMOKE_SIZES, DEFAULT_SIZES, FULL_SIZES))),
            needs_world=2,
        )
    )
