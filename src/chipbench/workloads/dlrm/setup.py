"""The DLRM family's set-ups: each builds the model (or the part it times) and this rank's batches on the
device, and returns the step to time: a training step (with its per-part breakdown), inference, the
embedding lookup alone, the MLPs alone, the interaction alone (torch imported inside functions only).

Across processes, backend torchrec runs TorchRec's DistributedModelParallel (tables sharded by its planner
or a forced type), backend torch the whole model under DistributedDataParallel; the dense kernels alone
run independently on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.wire import Info
from chipbench.workloads import common, parts
from chipbench.workloads.dlrm.accounting import Arithmetic, arithmetic, embedding_bytes
from chipbench.workloads.dlrm.backend import (
    DDP_EMBEDDINGS,
    check_hugepages,
    check_sharding,
    choose_backend,
    local_world_size,
    place_tables,
)
from chipbench.workloads.dlrm.config import Backend, DLRMConfig, EmbeddingConfig, Resolved
from chipbench.workloads.dlrm.data import rank_batches

if TYPE_CHECKING:
    from chipbench.models.dlrm import ModelSpec

INDEPENDENT = "independent per rank (a dense kernel alone: no communication)"


def model_spec(r: Resolved) -> ModelSpec:
    """The model's shape from a resolved config."""
    from chipbench.models.dlrm import ModelSpec

    return ModelSpec(
        rows=r.rows,
        dim=r.embedding_dim,
        bottom=r.bottom_mlp,
        top=r.top_mlp,
        interaction=r.interaction,
        dcn_layers=r.dcn_layers,
        dcn_rank=r.dcn_rank,
    )


def layout_facts(cfg: DLRMConfig, ctx: RunContext, parallelism: str, **facts: Any) -> Info:
    """How a run is spread over its processes (recorded only when distributed)."""
    split = common.split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    return {
        **common.layout_info(split, ctx, cfg.scaling, parallelism),
        "dist_backend": ctx.dist_backend,
        **facts,
    }


def run_info(cfg: DLRMConfig, r: Resolved, backend: str, why: str, batches: list[Any], b: int) -> Info:
    """What a run records of its model and data (the measured ids per sample among them)."""
    ids = sum(int(sp.values.numel()) for _, sp, _ in batches) / len(batches) / b
    return {
        "backend": backend,
        "backend_reason": why,
        "preset": cfg.preset,
        "max_rows": cfg.max_rows or None,
        "rows_capped": r.rows != r.rows_uncapped,
        "num_tables": r.num_tables,
        "rows_sum": sum(r.rows),
        "embedding_dim": r.embedding_dim,
        "interaction": r.interaction,
        "ids_per_sample_measured": ids,
        "dense_dtype": "fp32" if cfg.dtype in ("auto", "fp32") else f"{cfg.dtype} autocast",
        "embedding_dtype": "fp32",
    }


@dataclass(frozen=True)
class Start:
    """What every DLRM set-up starts with."""

    arith: Arithmetic
    resolved: Resolved
    backend: Backend
    backend_reason: str
    batch: int
    """This rank's batch size (rows per step)."""


def begin(cfg: DLRMConfig, ctx: RunContext) -> Start:
    """The arithmetic, resolved preset, backend and this rank's batch, with torch's generator seeded for
    the model's initial weights."""
    import torch

    a = arithmetic(cfg)
    backend, why = choose_backend(cfg.backend, ctx.device, cfg.embedding_optimizer, ctx.world_size)
    local = common.split_batch(cfg.batch_size, ctx.world_size, cfg.scaling).per_rank
    torch.manual_seed(ctx.seed)
    return Start(a, a.resolved, backend, why, local)


def begin_sparse(cfg: DLRMConfig, ctx: RunContext) -> Start:
    """`begin` for a case with embedding tables: huge pages and the sharding checked first."""
    s = begin(cfg, ctx)
    check_hugepages(cfg, ctx)
    if ctx.distributed:
        check_sharding(cfg.sharding, ctx.device, s.backend, s.backend_reason)
    return s


def rank_data(cfg: DLRMConfig, ctx: RunContext, s: Start, layout: Info) -> tuple[list[Any], Info]:
    """This rank's batches, once the tables are placed, and the run's info with that `layout`."""
    batches = rank_batches(cfg, s.resolved, ctx, cfg.num_batches)
    info = run_info(cfg, s.resolved, s.backend, s.backend_reason, batches, s.batch)
    info.update(layout)
    return batches, info


@dataclass
class BuiltModel:
    """A DLRM built on the device, with this rank's batches prepared for it."""

    model: Any
    """The module to call: the DLRM, or its DistributedModelParallel / DDP wrapper."""
    inner: Any
    """The DLRM inside."""
    arith: Arithmetic
    info: Info
    batches: list[Any]
    """(dense, the backend's sparse input, labels) per batch."""
    batch: int
    """This rank's batch size."""


def build_model(cfg: DLRMConfig, ctx: RunContext, init_state: dict[str, Any] | None = None) -> BuiltModel:
    """The model, its batches and info.

    Across processes: backend torchrec -> TorchRec's DistributedModelParallel (tables sharded by its
    planner or a forced type); backend torch -> the whole model under DistributedDataParallel.
    `init_state` (a single-process state_dict, full tables) replaces the initial weights (tests)."""
    from chipbench.models import dlrm as m
    from chipbench.models import dlrm_sharding as sh

    s = begin_sparse(cfg, ctx)
    r, backend, local = s.resolved, s.backend, s.batch
    spec = model_spec(r)
    layout: Info = {}
    model: Any
    if ctx.distributed and backend == "torchrec":
        asked = sh.Asked(cfg.sharding, local, r.lookups, local_world_size(ctx))
        model, plan = sh.shard_dlrm(spec, ctx.torch_device, cfg.embedding_optimizer, cfg.lr, asked)
        inner = sh.unwrap(model)
        layout = layout_facts(
            cfg, ctx, "torchrec_dmp", sharding=cfg.sharding, sharding_plan=sh.summarize_plan(plan),
            dense="replicated (DistributedDataParallel inside DMP)",
        )  # fmt: skip
        if init_state is not None:
            sh.load_full_state(model, init_state)
    else:
        inner = model = m.DLRM(spec, backend, ctx.torch_device, cfg.embedding_optimizer, cfg.lr)
        if init_state is not None:
            sh.load_full_state(inner, init_state)
        if ctx.distributed:
            model = sh.ddp_module(inner, ctx.torch_device)
            layout = layout_facts(cfg, ctx, "ddp", embeddings=DDP_EMBEDDINGS)
    batches, info = rank_data(cfg, ctx, s, layout)
    prepared = [(dense, inner.prepare_sparse(sp), y) for dense, sp, y in batches]
    return BuiltModel(model, inner, s.arith, info, prepared, local)


def embedding_optimizer(cfg: DLRMConfig, model: Any, inner: Any, dense_params: list[Any]) -> Any:
    """The embedding optimizer the step must call: the sparse one of backend torch, the one of the tables
    DMP replicates (sharding data_parallel), or None (fused into FBGEMM's backward)."""
    from chipbench.models.dlrm_sharding import replicated_table_optimizer

    if model is not inner and inner.backend == "torchrec":
        return replicated_table_optimizer(model, dense_params, cfg.embedding_optimizer, cfg.lr)
    return inner.make_embedding_optimizer(cfg.lr)


def describe_optimizer(eopt: Any, info: Info) -> str:
    if eopt is None and info.get("backend") == "hybrid":
        return "SGD applied in the backward: index_add_ of -lr x each lookup's gradient, one table per thread"
    if eopt is None:
        return "fused into backward (FBGEMM)"
    if info.get("parallelism") == "torchrec_dmp":
        return f"fused into backward (FBGEMM); data_parallel tables: {type(eopt).__name__} on all-reduced dense gradients"
    return f"sparse {type(eopt).__name__}"


def train_setup(
    cfg: DLRMConfig,
    ctx: RunContext,
    init_state: dict[str, Any] | None = None,
    expose: dict[str, Any] | None = None,
) -> Prepared:
    """A training step. `init_state` replaces the initial weights and `expose` receives the model (tests)."""
    import torch

    from chipbench.models.dlrm import dense_optimizer

    built = build_model(cfg, ctx, init_state)
    model, inner, batches = built.model, built.inner, built.batches
    a, info, b = built.arith, built.info, built.batch
    model.train()
    dopt = dense_optimizer(cfg.dense_optimizer, inner.dense_parameters(), cfg.lr)
    eopt = embedding_optimizer(cfg, model, inner, inner.dense_parameters())
    if expose is not None:
        expose["model"] = model
    amp = common.autocast(cfg.dtype, ctx)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    next_batch = common.rotation(batches)

    def step() -> Any:
        dense, sp, y = next_batch()
        dopt.zero_grad(set_to_none=True)
        with amp():
            logit = model(dense, sp)  # (B, 1)
        loss = bce(logit.squeeze(1).float(), y)
        loss.backward()
        dopt.step()
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        return loss.detach()

    def after() -> Info:
        return parts.parts_info(train_pass(model, dopt, eopt, batches, amp, (fb, fb_all)), ctx.device, reps=5)

    ids = info["ids_per_sample_measured"]
    fb, fb_all = embedding_bytes(a, b, ids, training=True)
    info["embedding_optimizer"] = describe_optimizer(eopt, info)
    info["hugepages"] = place_tables(cfg, ctx, model, (eopt,))
    if ctx.distributed:  # parts run alone would call the sharded/DDP modules outside their collectives
        info["breakdown"] = "not measured across processes"
    return Prepared(
        step=step,
        work=step_work(a, b, (fb, fb_all), training=True),
        info=info,
        after=None if ctx.distributed else after,
    )


STEP_CONVENTIONS = {
    # training: (FLOP convention, bytes convention, the name of the bytes with indices (and optimizer))
    True: (
        "dense only: 2 per MAC of MLPs + interaction, training = 3x forward",
        "FBGEMM TBE: fp32 out + weight rows, backward = 2x forward bytes",
        "with_indices_and_optimizer",
    ),
    False: (
        "dense only: 2 per MAC of MLPs + interaction (forward)",
        "FBGEMM TBE forward: fp32 out + weight rows",
        "with_indices",
    ),
}


def step_work(a: Arithmetic, b: int, emb_bytes: tuple[float, float], training: bool) -> Work:
    """A whole step's work on `b` samples: the dense FLOPs (training: 3x the forward's) and the tables'
    bytes, `emb_bytes` from `embedding_bytes`."""
    flop_convention, bytes_convention, wider = STEP_CONVENTIONS[training]
    return Work(
        flops=(3 if training else 1) * a.forward_flops * b,
        bytes=emb_bytes[0],
        samples=b,
        flop_convention=flop_convention,
        bytes_convention=bytes_convention,
        extra_bytes={wider: emb_bytes[1]},
    )


def train_pass(
    model: Any, dopt: Any, eopt: Any, batches: list[Any], amp: Any, emb_bytes: tuple[float, float]
) -> parts.Pass:
    """The training step once more, each part on detached inputs so its backward is a part of its own,
    calling mark(part) at each part's end (`parts.measure_parts` times and counts it). `emb_bytes`: the
    step's (FBGEMM bytes, with indices and optimizer) from `embedding_bytes`: the lookup's and the
    update's bytes, which operator counting cannot see."""
    import torch

    fwd_bytes = emb_bytes[0] / 3  # training counts 3x the forward
    update_bytes = emb_bytes[1] - fwd_bytes

    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def run(mark: Any, rep: int) -> None:
        dense, sp, y = batches[rep % len(batches)]
        dopt.zero_grad(set_to_none=True)
        e = model.sparse(sp)  # (B, F, D)
        mark("embedding_fwd", fwd_bytes)
        with amp():
            d = model.bottom(dense)  # (B, D)
        mark("bottom_mlp_fwd")
        d_in, e_in = d.detach().requires_grad_(), e.detach().requires_grad_()
        with amp():
            z = model.inter(d_in, e_in)  # (B, W)
        mark("interaction_fwd")
        z_in = z.detach().requires_grad_()
        with amp():
            logit = model.top(z_in)  # (B, 1)
        loss = bce(logit.squeeze(1).float(), y)
        mark("top_mlp_fwd")
        parts.backward_in_parts(
            mark, loss, "top_mlp_bwd", ((z, z_in, "interaction_bwd"), (d, d_in, "bottom_mlp_bwd"))
        )
        e.backward(e_in.grad)
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        mark("embedding_bwd_and_update", update_bytes)
        dopt.step()
        mark("dense_optimizer")

    return run


def inference_pass(model: Any, batches: list[Any], amp: Any, fwd_bytes: float) -> parts.Pass:
    import torch

    def run(mark: Any, rep: int) -> None:
        dense, sp, _ = batches[rep % len(batches)]
        with torch.no_grad():
            e = model.sparse(sp)  # (B, F, D)
            mark("embedding_fwd", fwd_bytes)
            with amp():
                d = model.bottom(dense)  # (B, D)
                mark("bottom_mlp_fwd")
                z = model.inter(d, e)  # (B, W)
                mark("interaction_fwd")
                model.top(z)  # (B, 1)
                mark("top_mlp_fwd")

    return run


def inference_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    built = build_model(cfg, ctx)
    model, a, info, batches, b = built.model, built.arith, built.info, built.batches, built.batch
    model.eval()
    info["hugepages"] = place_tables(cfg, ctx, model)
    amp = common.autocast(cfg.dtype, ctx)
    next_batch = common.rotation(batches)

    def step() -> Any:
        dense, sp, _ = next_batch()
        with torch.no_grad(), amp():
            return model(dense, sp)  # (B, 1)

    def after() -> Info:
        return parts.parts_info(inference_pass(model, batches, amp, fb), ctx.device, reps=5)

    fb, fb_all = embedding_bytes(a, b, info["ids_per_sample_measured"], training=False)
    if ctx.distributed:
        info["breakdown"] = "not measured across processes"
    return Prepared(
        step=step,
        after=None if ctx.distributed else after,
        work=step_work(a, b, (fb, fb_all), training=False),
        info=info,
    )


def embedding_setup(cfg: EmbeddingConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models import dlrm as m
    from chipbench.models import dlrm_embeddings as me
    from chipbench.models import dlrm_sharding as sh

    s = begin_sparse(cfg, ctx)
    a, r, backend, b = s.arith, s.resolved, s.backend, s.batch
    spec = model_spec(r)
    layout: Info = {}
    emb: Any
    if ctx.distributed and backend == "torchrec":
        tables = me.ShardableEmbeddings(spec.rows, spec.dim, cfg.embedding_optimizer, cfg.lr, "meta")
        asked = sh.Asked(cfg.sharding, b, r.lookups, local_world_size(ctx))
        emb, plan = sh.shard(tables, spec, ctx.torch_device, asked)
        inner: Any = sh.unwrap(emb, me.ShardableEmbeddings)
        layout = layout_facts(
            cfg, ctx, "torchrec_dmp", sharding=cfg.sharding, sharding_plan=sh.summarize_plan(plan)
        )
    else:
        inner = emb = m.build_embeddings(spec, backend, ctx.torch_device, cfg.embedding_optimizer, cfg.lr)
        if ctx.distributed:
            emb = sh.ddp_module(inner, ctx.torch_device)
            layout = layout_facts(cfg, ctx, "ddp", embeddings=DDP_EMBEDDINGS)
    batches, info = rank_data(cfg, ctx, s, layout)
    inputs = [inner.prepare(sp) for _, sp, _ in batches]
    gen = common.generator(ctx, 1, on_device=True)
    grad = torch.randn(b, r.num_tables, r.embedding_dim, generator=gen, device=ctx.torch_device)  # (B, F, D)
    eopt: Any
    if backend == "torch":
        eopt = me.sparse_optimizer(cfg.embedding_optimizer, inner.weights(), cfg.lr)
    elif emb is not inner:
        eopt = sh.replicated_table_optimizer(emb, [], cfg.embedding_optimizer, cfg.lr)
    else:
        eopt = None
    info["embedding_optimizer"] = describe_optimizer(eopt, info)
    info["hugepages"] = place_tables(cfg, ctx, emb, (eopt,))
    next_input = common.rotation(inputs)
    fwd_only = cfg.mode == "fwd"

    def step() -> Any:
        inp = next_input()
        if fwd_only:
            with torch.no_grad():
                return emb(inp)  # (B, F, D)
        out = emb(inp)
        out.backward(grad)
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        return None

    fb, fb_all = embedding_bytes(a, b, info["ids_per_sample_measured"], training=not fwd_only)
    info["mode"] = cfg.mode
    return Prepared(
        step=step,
        work=Work(
            bytes=fb,
            samples=b,
            bytes_convention="FBGEMM TBE: fp32 out + weight rows"
            + ("" if fwd_only else "; backward = 2x fwd"),
            extra_bytes={"with_indices_and_optimizer" if not fwd_only else "with_indices": fb_all},
        ),
        info=info,
    )


def _dense(cfg: DLRMConfig, ctx: RunContext) -> tuple[Start, tuple[Any, Any, Any], Any]:
    """The start of a dense part's case: the run's start, the bottom MLP, interaction and top MLP, and the
    device generator its inputs are drawn from."""
    from chipbench.models.dlrm import build_dense

    s = begin(cfg, ctx)
    dense = build_dense(model_spec(s.resolved), s.backend, ctx.torch_device)
    return s, dense, common.generator(ctx, on_device=True)


def _dense_prepared(
    cfg: DLRMConfig, ctx: RunContext, s: Start, step: Any, forward_flops: float, convention: str, facts: Info
) -> Prepared:
    """A dense part's case: forward + backward = 3x its forward FLOPs per sample; `facts` after the run's."""
    info = {"backend": s.backend, "backend_reason": s.backend_reason, "preset": cfg.preset, **facts}
    if ctx.distributed:
        info.update(layout_facts(cfg, ctx, INDEPENDENT))
    work = Work(flops=3 * forward_flops * s.batch, samples=s.batch, flop_convention=convention)
    return Prepared(step=step, work=work, info=info)


def mlp_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    s, (bottom, _, top), gen = _dense(cfg, ctx)
    r, b = s.resolved, s.batch
    xs = [
        (
            torch.randn(b, r.bottom_mlp[0], generator=gen, device=ctx.torch_device),  # (B, I)
            torch.randn(b, r.interaction_width, generator=gen, device=ctx.torch_device),  # (B, W)
        )
        for _ in range(cfg.num_batches)
    ]
    amp = common.autocast(cfg.dtype, ctx)
    params = [*bottom.parameters(), *top.parameters()]
    next_input = common.rotation(xs)

    def step() -> None:
        xb, xt = next_input()
        for p in params:
            p.grad = None
        with amp():
            out = bottom(xb).float().sum() + top(xt).float().sum()
        out.backward()

    return _dense_prepared(
        cfg, ctx, s, step, s.arith.mlp_forward_flops, "2 per MAC, forward + backward = 3x forward",
        {"max_rows": cfg.max_rows or None, "pass": "forward + backward of bottom and top MLPs (no optimizer)"},
    )  # fmt: skip


def interaction_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    s, (_, inter, _), gen = _dense(cfg, ctx)
    r, b = s.resolved, s.batch
    f, d = r.num_tables, r.embedding_dim
    xs = [
        (
            torch.randn(b, d, generator=gen, device=ctx.torch_device).requires_grad_(),  # (B, D)
            torch.randn(b, f, d, generator=gen, device=ctx.torch_device).requires_grad_(),  # (B, F, D)
        )
        for _ in range(cfg.num_batches)
    ]
    gout = torch.randn(b, r.interaction_width, generator=gen, device=ctx.torch_device)  # (B, W)
    amp = common.autocast(cfg.dtype, ctx)
    params = [*inter.parameters()]
    next_input = common.rotation(xs)

    def step() -> None:
        dn, sp = next_input()
        dn.grad = sp.grad = None
        for p in params:
            p.grad = None
        with amp():
            z = inter(dn, sp)
        z.backward(gout.to(z.dtype))

    return _dense_prepared(
        cfg, ctx, s, step, s.arith.interaction_forward_flops,
        "dot: full (F+1)^2 D bmm; dcn: 2 matmuls + 3 elementwise per layer; fwd+bwd = 3x",
        {"interaction": r.interaction, "interaction_width": r.interaction_width},
    )  # fmt: skip
