"""The roofline breakdown: what each part counts (against FlopCounterMode and hand counts), each part's
floor against the ceilings, the step's share of its roofline, and a results file's breakdown as input."""

from __future__ import annotations

import dataclasses
import math

import pytest

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.platform.ceilings import Ceilings
from chipbench.results import validate
from chipbench.results.render import roofline_lines
from chipbench.results.roofline import roofline
from chipbench.workloads.parts import measure_parts

torch = pytest.importorskip("torch")
CTX = RunContext(device="cpu", torch_device="cpu", seed=0)
CEIL = Ceilings("test-machine", matmul_tflops={"fp32": 0.4, "bf16": 2.0}, copy_gbps=20.0)


def test_a_pure_gemm_step_has_its_gemm_time_at_the_ceiling_as_floor():
    m, n, k = 256, 384, 512
    a, b = torch.randn(m, k), torch.randn(k, n)

    def run(mark, rep):
        a @ b
        mark("gemm")

    parts = measure_parts(run, "cpu", reps=3)
    assert parts["gemm"]["flops"] == 2 * m * n * k  # hand count
    assert parts["gemm"]["bytes"] == 4 * (m * k + k * n + m * n)  # read both, write the product once
    r, why = roofline(parts, parts["gemm"]["ms"] * 1e-3, "fp32", CEIL)
    assert why is None and r is not None
    at_ceiling_ms = 2 * m * n * k / (0.4e12) * 1e3
    p = r.parts["gemm"]
    assert p.bound == "compute"
    if not p.faster_than_floor:
        assert math.isclose(p.floor_ms, at_ceiling_ms, rel_tol=1e-9)
        assert math.isclose(r.floor_ms, at_ceiling_ms, rel_tol=1e-9)
        assert math.isclose(r.share_of_roofline, at_ceiling_ms / p.ms, rel_tol=1e-9)


def test_a_lookup_counts_the_rows_it_touches_not_the_table():
    table = torch.nn.Embedding(200_000, 32)
    ids = torch.randint(0, 200_000, (1000,))

    def run(mark, rep):
        with torch.no_grad():
            table(ids)
        mark("lookup")

    parts = measure_parts(run, "cpu", reps=1)
    assert parts["lookup"]["bytes"] == 8 * 1000 + 2 * 4 * 1000 * 32  # ids + rows read + rows written
    assert parts["lookup"]["flops"] == 0


def test_llama_forward_parts_add_up_to_flopcountermode_and_hand_counts():
    from torch.utils.flop_counter import FlopCounterMode

    b = workloads.get("llama.forward")
    cfg = b.config({"flavor": "tiny", "dtype": "fp32"})
    prep = b.setup(cfg, CTX)
    parts = prep.after()["parts"]
    with FlopCounterMode(display=False) as fc:
        prep.step()
    s = cfg.shape()
    a = s.model_args()
    tokens = s.batch_size * s.seq_len
    # FlopCounterMode lists no formula for the CPU flash-attention kernel; the parts count it as it counts
    # the others (2 per MAC, unmasked): q k^T and p v over every (query, key) pair of every head
    sdpa = a.n_layers * 4 * s.batch_size * a.n_heads * s.seq_len**2 * a.head_dim
    assert parts["attention"]["flops"] == sdpa
    assert sum(p["flops"] for p in parts.values()) - sdpa == fc.get_total_flops()
    qkv = a.n_layers * 2 * tokens * a.dim * (a.n_heads + 2 * a.n_kv_heads) * a.head_dim
    assert parts["qkv_projection"]["flops"] == qkv
    assert parts["output_head"]["flops"] == 2 * tokens * a.dim * a.vocab_size
    assert parts["rmsnorm"]["flops"] == 0 and parts["rmsnorm"]["bytes"] > 0


def test_dlrm_train_step_parts_count_what_the_step_counts():
    from torch.utils.flop_counter import FlopCounterMode

    b = workloads.get("dlrm.train_step")
    prep = b.setup(b.config({"preset": "tiny", "batch_size": 64, "dtype": "fp32", "backend": "torch"}), CTX)
    parts = prep.after()["parts"]
    with FlopCounterMode(display=False) as fc:
        prep.step()
    assert sum(p["flops"] for p in parts.values()) == fc.get_total_flops()
    assert list(parts)[:2] == ["embedding_fwd", "bottom_mlp_fwd"]
    assert parts["top_mlp_bwd"]["flops"] == 2 * parts["top_mlp_fwd"]["flops"]  # backward = 2x forward
    assert parts["embedding_fwd"]["flops"] == 0 and parts["embedding_fwd"]["bytes"] > 0


def _parts(**ms):
    return {n: {"ms": v, "flops": 4e8, "bytes": 2e7} for n, v in ms.items()}


def test_shares_never_pass_100_percent_and_cover_is_judged():
    # 4e8 FLOPs at 0.4 TFLOP/s = 1 ms; 2e7 bytes at 20 GB/s = 1 ms: a floor of 1 ms per part
    r, _ = roofline(_parts(a=2.0, b=0.5), 2.5e-3, "fp32", CEIL)
    assert r is not None
    assert r.parts["a"].share_of_roofline == 0.5 and not r.parts["a"].faster_than_floor
    # b ran in half its floor: from cache. Its time stands as its floor; no share passes 100%.
    assert r.parts["b"].faster_than_floor and r.parts["b"].share_of_roofline == 1.0
    assert r.floor_ms == 1.5 and r.share_of_roofline == pytest.approx(1.5 / 2.5)
    assert r.covered and r.holds_back == "a"
    slow, _ = roofline(_parts(a=2.0, b=2.0), 2.0e-3, "fp32", CEIL)  # the parts' pass took 2x the step
    assert slow is not None and not slow.covered and slow.share_of_roofline <= 1.0
    assert roofline(_parts(a=1.0), 1e-3, "fp32", None) == (
        None,
        "no measured ceilings: run `chipbench calibrate`",
    )
    assert (
        roofline(_parts(a=1.0), 1e-3, "fp16", CEIL)[1]
        == "no measured fp16 matmul ceiling: run `chipbench calibrate`"
    )
    line = roofline_lines(
        {"benchmarks": [{"name": "x.train_step", "extra_info": {"roofline": r.to_json()}}]}
    )[0]
    assert "60% of roofline speed" in line and "held back most by a" in line


@pytest.mark.parametrize(
    "bad",
    [
        {"step_ms": -1.0},
        {"share_of_roofline": float("nan")},
        {"parts": {"a": {"ms": "1"}}},
        {"parts": ["a"]},
    ],
)
def test_a_hostile_breakdown_in_a_results_file_is_refused(bad):
    r, _ = roofline(_parts(a=2.0), 2e-3, "fp32", CEIL)
    assert r is not None
    with pytest.raises(validate._Bad):
        validate._check_roofline({**r.to_json(), **bad}, "benchmarks[0].extra_info.roofline")
    validate._check_roofline(r.to_json(), "benchmarks[0].extra_info.roofline")  # the untouched one passes


def test_a_table_and_its_optimizer_state_both_count_as_the_rows_touched():
    from chipbench.workloads.parts import _touched

    # FBGEMM's fused Adagrad backward: the table and its same-size state in, the rows' gradients in
    assert _touched([1e9, 1e9, 13e6, 4e6]) == [13e6, 13e6, 13e6, 4e6]
    assert _touched([2e6, 1.5e6, 1e6]) == [2e6, 1.5e6, 1e6]  # nothing far larger: all counted
    assert _touched([5e8, 0.0]) == [5e8, 0.0]  # nothing else moved: the operand stands


def test_the_gate_skips_the_parts_pass_and_run_takes_it():
    from chipbench.execution.options import RunOptions
    from chipbench.execution.protocol import CaseRequest, run_message
    from chipbench.execution.worker import measure_case, prepare

    case = prepare("dlrm.train_step", {"preset": "tiny", "batch_size": 64, "dtype": "fp32"}, "cpu")
    options = RunOptions(time_budget_s=0.05)
    ran = measure_case(CaseRequest.read(run_message("dlrm.train_step", {}, options)), "cpu", case)
    gated = measure_case(
        CaseRequest.read(run_message("dlrm.train_step", {}, dataclasses.replace(options, after=False))),
        "cpu",
        case,
    )
    assert "parts" in ran["info"] and "parts" not in gated["info"]
