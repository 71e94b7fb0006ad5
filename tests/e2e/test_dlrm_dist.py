"""DLRM across processes: TorchRec's DistributedModelParallel (and plain DDP) over 2 gloo processes on this
CPU train exactly like one process over the same global batch; the sharding plan is made without a
process group. One `run_local` spawn serves every distributed case (process start + imports cost ~5 s)."""

from __future__ import annotations

import pytest

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.workloads import dlrm as wl
from chipbench.workloads.common import BatchSplit, split_batch

torch = pytest.importorskip("torch")
msh = pytest.importorskip("chipbench.models.dlrm_sharding")
emb = pytest.importorskip("chipbench.models.dlrm_embeddings")

HAS_TORCHREC = emb.torchrec_available()[0]
needs_torchrec = pytest.mark.skipif(not HAS_TORCHREC, reason="torchrec/fbgemm_gpu not importable")

GLOBAL_BATCH = 64
STEPS = 5
LR = 1.0
# (backend, sharding): TorchRec shards table_wise, column_wise and data_parallel on CPU (row-wise forms are
# CUDA-only in its EmbeddingBagCollectionSharder); backend torch runs the whole model under DDP.
CASES = [
    ("torchrec", "table_wise"),
    ("torchrec", "column_wise"),
    ("torchrec", "data_parallel"),
    ("torch", "auto"),
]
# Loss tolerance over 5 SGD steps in fp32. The N-process run computes the same math in another order:
# each rank's loss is the mean over its half of the batch, DDP averages dense gradients across ranks,
# TorchRec divides the embedding output gradients by the world size, and the all-to-all / all-reduce sums
# come in another order than one process's reductions. That moves results by a few fp32 ulps per step
# (observed differences ~1e-7); 1e-5 relative leaves room for that drift and still catches any real
# difference (a wrong shard, a missing 1/world scaling or a skipped update changes the loss by > 1e-3).
RTOL, ATOL = 1e-5, 1e-6
W_ATOL = 1e-6  # weights: updates are ~1e-3 per step here, observed differences ~1e-8


def _cfg(backend: str, sharding: str = "auto", name: str = "dlrm.train_step", **extra):
    return workloads.get(name).config(
        {
            "preset": "tiny",
            "batch_size": GLOBAL_BATCH,
            "scaling": "strong",  # batch_size is the global batch: each of 2 ranks takes 32 rows
            "backend": backend,
            "sharding": sharding,
            "embedding_optimizer": "sgd",
            "dense_optimizer": "sgd",
            "lr": LR,
            "dtype": "fp32",
            "num_batches": 2,
            **extra,
        }
    )


def _initial_state(backend: str) -> dict:
    """The single-process model's weights at seed 0 (full tables), to load into every run."""
    inner = wl.build_model(_cfg(backend), RunContext(device="cpu", torch_device="cpu", seed=0)).inner
    return {k: v.detach().clone() for k, v in inner.state_dict().items()}


def _local_state(model) -> dict:
    """{key: [(offsets, values)]}: this rank's part of every weight (shards of sharded tables), as numpy
    arrays (tensors sent back from a process that exits lose their shared storage)."""
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    out = {}
    for key, v in msh.unwrap(model).state_dict().items():
        if isinstance(v, ShardedTensor):
            out[key] = [
                (list(s.metadata.shard_offsets), s.tensor.detach().clone().numpy()) for s in v.local_shards()
            ]
        else:
            out[key] = [([0] * v.dim(), v.detach().clone().numpy())]
    return out


def _worker(rank: int, world: int, states: dict) -> dict:
    ctx = RunContext(
        device="cpu",
        torch_device="cpu",
        seed=0,
        rank=rank,
        world_size=world,
        local_rank=rank,
        dist_backend="gloo",
    )
    out: dict = {}
    for backend, sharding in CASES:
        got: dict = {}
        prep = wl.train_setup(_cfg(backend, sharding), ctx, init_state=states[backend], expose=got)
        losses = [float(prep.step()) for _ in range(STEPS)]
        out[(backend, sharding)] = {
            "losses": losses,
            "info": prep.info,
            "samples": prep.work.samples,
            "state": _local_state(got["model"]),
        }
    # The other two front doors run sharded too (weak scaling: batch_size per rank).
    for name in ("dlrm.inference", "dlrm.embedding"):
        prep = workloads.get(name).setup(
            _cfg("torchrec", "table_wise", name, scaling="weak", batch_size=16), ctx
        )
        for _ in range(2):
            prep.step()
        out[name] = {"info": prep.info, "samples": prep.work.samples}
    try:  # a sharding TorchRec cannot do on CPU fails on every rank, before any collective
        wl.train_setup(_cfg("torchrec", "row_wise"), ctx)
        out["row_wise"] = None
    except UsageError as exc:
        out["row_wise"] = str(exc)
    return out


@pytest.fixture(scope="module")
def dist_results():
    from chipbench.execution.process_groups import run_local

    states = {backend: _initial_state(backend) for backend in {b for b, _ in CASES}}
    return states, run_local(_worker, 2, states)


@needs_torchrec
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{b}-{s}" for b, s in CASES])
def test_two_processes_match_one(dist_results, case):
    states, ranks = dist_results
    backend, sharding = case
    exposed: dict = {}
    ref = wl.train_setup(_cfg(backend), RunContext(device="cpu", torch_device="cpu", seed=0),
                          init_state=states[backend], expose=exposed)  # fmt: skip
    ref_losses = [float(ref.step()) for _ in range(STEPS)]
    # Each rank's loss is the mean over its 32 rows: the global loss is their mean.
    got = [sum(r[case]["losses"][i] for r in ranks) / len(ranks) for i in range(STEPS)]
    torch.testing.assert_close(torch.tensor(got), torch.tensor(ref_losses), rtol=RTOL, atol=ATOL)
    # Every weight each rank holds after the steps (its shards of the tables, its dense replica) equals the
    # one-process weights, and every table moved: a table left without an update would fail here.
    final = {k: v.detach() for k, v in exposed["model"].state_dict().items()}
    moved = set()
    for r in ranks:
        for key, parts in r[case]["state"].items():
            for offsets, values in parts:
                idx = tuple(slice(o, o + n) for o, n in zip(offsets, values.shape, strict=True))
                torch.testing.assert_close(torch.from_numpy(values), final[key][idx], rtol=RTOL, atol=W_ATOL)
                if not torch.equal(final[key][idx], states[backend][key][idx]):
                    moved.add(key)
    assert moved == set(final), set(final) - moved
    info = ranks[0][case]["info"]
    assert info["per_rank_batch_size"] == GLOBAL_BATCH // 2 and info["global_batch_size"] == GLOBAL_BATCH
    assert info["world_size"] == 2 and info["scaling"] == "strong"
    assert all(r[case]["samples"] == GLOBAL_BATCH // 2 for r in ranks)  # Work counts one rank's share
    if backend == "torchrec":
        assert info["parallelism"] == "torchrec_dmp" and info["sharding"] == sharding
        plan = info["sharding_plan"]
        assert set(plan) == {"t0", "t1", "t2", "t3"}
        assert {p["sharding_type"] for p in plan.values()} == {sharding}
        # the plan the run used is the one `plan` predicts without a process group
        predicted = workloads.get("dlrm.train_step").plan(_cfg(backend, sharding), 2, "cpu")
        assert predicted.facts["sharding_plan"] == plan
    else:
        assert info["parallelism"] == "ddp"


@needs_torchrec
@pytest.mark.slow
def test_other_benchmarks_and_errors_across_processes(dist_results):
    _, ranks = dist_results
    for name in ("dlrm.inference", "dlrm.embedding"):
        info = ranks[0][name]["info"]
        assert info["parallelism"] == "torchrec_dmp" and info["scaling"] == "weak"
        assert info["per_rank_batch_size"] == 16 and info["global_batch_size"] == 32
        assert ranks[1][name]["samples"] == 16
    for r in ranks:
        assert r["row_wise"] and "table_wise" in r["row_wise"] and "\n" not in r["row_wise"]


@needs_torchrec
@pytest.mark.parametrize("sharding", ["table_wise", "column_wise", "data_parallel"])
def test_plan_without_process_group(sharding):
    b = workloads.get("dlrm.train_step")
    layout = b.plan(_cfg("torchrec", sharding, batch_size=32, scaling="weak"), 2, "cpu")
    p = layout.as_dict()
    assert p["parallelism"] == "torchrec_dmp" and p["sharding"] == sharding
    assert p["per_rank_batch_size"] == 32 and p["global_batch_size"] == 64
    assert len(p["sharding_plan"]) == 4
    for table in p["sharding_plan"].values():
        assert table["sharding_type"] == sharding
        assert set(table["ranks"]) <= {0, 1}
    if sharding == "data_parallel":
        assert all(t["ranks"] == [0, 1] for t in p["sharding_plan"].values())
    # Per-rank memory follows the plan: sharded, the tables' elements add up to the whole once;
    # data-parallel, every rank holds them all.
    cfg = _cfg("torchrec", sharding, batch_size=32, scaling="weak")
    total = b.describe(cfg).facts["embedding_parameters"]
    elems = p["embedding_elements_per_rank"]
    assert elems == [total, total] if sharding == "data_parallel" else sum(elems) == total
    assert p["memory_breakdown_per_rank"]["embedding_shards_and_state"] == 4 * max(elems)
    assert layout.memory_bytes_per_rank_estimate == sum(p["memory_breakdown_per_rank"].values())
    auto = b.plan(b.config({"preset": "kaggle"}), 2, "cpu")  # the planner's own choice, full-size tables
    assert len(auto.facts["sharding_plan"]) == 26
    with pytest.raises(UsageError, match="table_wise"):
        b.plan(_cfg("torchrec", "row_wise"), 2, "cpu")
    assert b.plan(_cfg("torch"), 2, "cpu").facts["parallelism"] == "ddp"
    with pytest.raises(UsageError, match="needs backend torchrec"):
        b.plan(_cfg("torch", "table_wise"), 2, "cpu")  # DDP replicates every table: nothing to shard
    one = b.plan(_cfg("torchrec"), 1, "cpu")
    assert one.facts["parallelism"] == "none" and one.memory_bytes_per_rank_estimate is None


def test_batch_split_and_config():
    cfg = _cfg("torch")
    weak = _cfg("torch", scaling="weak")
    assert split_batch(cfg.batch_size, 1, cfg.scaling) == BatchSplit(64, 64)
    assert split_batch(cfg.batch_size, 4, cfg.scaling) == BatchSplit(16, 64)
    assert split_batch(weak.batch_size, 4, weak.scaling) == BatchSplit(64, 256)
    with pytest.raises(UsageError, match="multiple of 3"):
        split_batch(cfg.batch_size, 3, cfg.scaling)
    for bad in ({"sharding": "diagonal"}, {"scaling": "linear"}):
        with pytest.raises(UsageError):
            workloads.get("dlrm.train_step").config(bad)
    with pytest.raises(UsageError):
        wl.choose_backend("hybrid", "cpu", "sgd", world_size=2)
    if HAS_TORCHREC:
        assert wl.choose_backend("auto", "cpu", "sgd", world_size=2)[0] == "torchrec"


def test_rank_rows_reassemble_the_global_batch():
    """Each rank's rows of a global batch, put back together, are the global batch (all tables)."""
    cfg = _cfg("torch", batch_size=12)
    r = wl.resolve(cfg)
    ((_, sp, _),) = wl.make_batches(cfg, r, "cpu", 0, 1)
    parts = [sp.rows(lo, lo + 4) for lo in (0, 4, 8)]
    f = sp.num_tables
    lengths = torch.cat([p.lengths.view(f, 4) for p in parts], 1).reshape(-1)
    assert torch.equal(lengths, sp.lengths)
    per_table = [torch.split(p.values, p.lengths.view(f, 4).sum(1).tolist()) for p in parts]
    values = torch.cat([torch.cat([pt[t] for pt in per_table]) for t in range(f)])
    assert torch.equal(values, sp.values)
    assert all(p.batch_size == 4 for p in parts)


def test_plain_torch_across_processes_on_an_accelerator_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """No torchrec on a GPU image: DDP would all-reduce sparse gradients over NCCL, which cannot."""
    from chipbench.models import dlrm_embeddings

    monkeypatch.setattr(dlrm_embeddings, "torchrec_available", lambda: (False, "torchrec not installed"))
    for kind in ("cuda", "rocm", "xpu"):
        with pytest.raises(UsageError, match="needs a sparse all-reduce"):
            wl.choose_backend("auto", kind, "adagrad", world_size=2)
        assert wl.choose_backend("auto", kind, "adagrad", world_size=1)[0] == "torch"
    assert wl.choose_backend("torch", "cpu", "adagrad", world_size=2)[0] == "torch"  # gloo can
    cfg = wl.DLRMConfig(preset="tiny")
    with pytest.raises(UsageError, match="needs a sparse all-reduce"):
        workloads.get("dlrm.train_step").plan(cfg, 2, "cuda")
