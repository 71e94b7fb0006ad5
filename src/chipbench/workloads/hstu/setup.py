"""The HSTU family's set-ups: each builds the model (or the part it times) and this rank's users on the
device and returns the step to time: a training step (with its per-part breakdown), inference, the
attention alone, and the item table's sequence lookups alone (torch imported inside functions only).

Across processes the whole model runs under DistributedDataParallel: the item table replicated, its
sparse gradients all-reduced (gloo), the dense part's gradients averaged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.errors import UsageError
from chipbench.core.wire import Info
from chipbench.workloads import common, parts
from chipbench.workloads.hstu.accounting import (
    BYTES_CONVENTION,
    FLOP_CONVENTION,
    Arithmetic,
    arithmetic,
    lookup_bytes,
)
from chipbench.workloads.hstu.config import AttentionConfig, HSTUConfig, Resolved, SequenceEmbeddingConfig
from chipbench.workloads.hstu.data import Batch, rank_batches

DDP_TABLE = "replicated on every rank (DistributedDataParallel); sparse gradients all-reduced by DDP"


def choose_backend(requested: str, device_kind: str, world_size: int = 1) -> tuple[str, str]:
    """(fbgemm | torch, why). auto: FBGEMM where it imports and has kernels for the device, in one process."""
    from chipbench.models.hstu import fbgemm_jagged_ops

    if world_size > 1:
        if requested == "fbgemm":
            raise UsageError(
                "backend=fbgemm runs in one process (its fused update would apply each rank's rows alone); "
                "across processes use backend=torch (the table under DDP)"
            )
        if device_kind not in ("cpu", "mps"):
            raise UsageError(
                f"HSTU across {world_size} processes on {device_kind} needs a sparse all-reduce for its "
                f"item table, which {device_kind}'s collectives lack; run one process"
            )
        return "torch", f"across {world_size} processes: the table under DDP, sparse gradients all-reduced"
    if requested == "torch":
        return "torch", "requested with backend=torch"
    ok = fbgemm_jagged_ops()
    if requested == "fbgemm":
        if not ok or device_kind not in ("cpu", "cuda"):
            raise UsageError(
                f"backend=fbgemm is not usable here (fbgemm_gpu {'has no ' + device_kind + ' kernels' if ok else 'does not import'}); "
                "use --set backend=torch"
            )
        return "fbgemm", "requested with backend=fbgemm"
    if device_kind not in ("cpu", "cuda"):
        return "torch", f"auto: FBGEMM has no kernels for {device_kind}"
    if not ok:
        return "torch", "auto: fbgemm_gpu does not import"
    if device_kind == "cuda":
        import importlib.metadata as md

        try:
            md.version("fbgemm-gpu-cpu")
            return "torch", "auto: fbgemm-gpu-cpu has no CUDA kernels"
        except md.PackageNotFoundError:
            pass
    return "fbgemm", "auto: FBGEMM imports (table-batched kernel, row-wise Adagrad fused into backward)"


def choose_attention(requested: str) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"requested with attention={requested}"
    return (
        "jagged",
        "auto: jagged computes only the blocks the mask opens (h^2 + c h + c pairs per user, not N^2)",
    )


def model_args(r: Resolved) -> Any:
    from chipbench.models.hstu import HSTUArgs

    return HSTUArgs(
        num_items=r.items, dim=r.dim, n_layers=r.n_layers, n_heads=r.n_heads, attn_dim=r.attn_dim,
        linear_dim=r.linear_dim, hidden=r.hidden, max_seq_len=r.max_seq_len, num_tasks=r.num_tasks,
        input_dropout=r.input_dropout, linear_dropout=r.linear_dropout,
    )  # fmt: skip


@dataclass
class Built:
    model: Any
    """What the step calls: the HSTU, or its DDP wrapper."""
    inner: Any
    arith: Arithmetic
    info: Info
    batches: list[Batch]
    item_inputs: list[Any]
    """Each batch's prepared item lookup input."""


def build(
    cfg: HSTUConfig, ctx: RunContext, training: bool, init_state: dict[str, Any] | None = None
) -> Built:
    import torch

    from chipbench.models.hstu import HSTU

    backend, why = choose_backend(cfg.backend, ctx.device, ctx.world_size)
    path, path_why = choose_attention(cfg.attention)
    split = common.split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    a = arithmetic(dataclasses.replace(cfg, batch_size=split.per_rank), ctx.seed, training)
    r = a.resolved
    args = dataclasses.replace(model_args(r), relative_bias=cfg.relative_bias)
    torch.manual_seed(ctx.seed)
    ops = "fbgemm" if backend == "fbgemm" else "torch"
    inner = HSTU(args, backend, path, ops, cfg.lr, ctx.torch_device)  # type: ignore[arg-type]
    if init_state is not None:
        inner.load_state_dict(init_state)
    model: Any = inner
    info: Info = {
        "backend": backend,
        "backend_reason": why,
        "attention": path,
        "attention_reason": path_why,
        "jagged_ops": "fbgemm (jagged_to_padded_dense, dense_to_jagged)"
        if ops == "fbgemm"
        else "torch index copies",
        "preset": cfg.preset,
        "items": r.items,
        "items_capped": r.items != r.items_uncapped,
        "max_rows": cfg.max_rows or None,
        "dense_dtype": "fp32" if cfg.dtype in ("auto", "fp32") else f"{cfg.dtype} autocast",
        "item_table_dtype": "fp32",
    }
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.local_rank] if ctx.device == "cuda" else None
        model = DistributedDataParallel(inner, device_ids=ids)
        info.update(common.layout_info(split, ctx, cfg.scaling, "ddp"))
        info.update(dist_backend=ctx.dist_backend, item_table=DDP_TABLE)
    batches = rank_batches(cfg, r, ctx, cfg.num_batches)
    hist = [h for b in batches for h in b.seq.history]
    info["history_mean_drawn"] = sum(hist) / max(len(hist), 1)
    info["history_max_drawn"] = max(hist, default=0)
    info["tokens_per_step_mean"] = a.mean("tokens")
    return Built(model, inner, a, info, batches, [inner.items.prepare(b.items) for b in batches])


def pairs_info(a: Arithmetic, path: str) -> Info:
    """The attention pairs computed against those the mask opens (per head and layer, mean over batches)."""
    valid = sum(c.pairs.valid for c in a.counts) / len(a.counts)
    computed = sum(getattr(c.pairs, path) for c in a.counts) / len(a.counts)
    padded = sum(c.pairs.padded for c in a.counts) / len(a.counts)
    jag = sum(c.pairs.jagged for c in a.counts) / len(a.counts)
    return {
        "attention_pairs_valid": valid,
        "attention_pairs_computed": computed,
        "attention_waste": 1.0 - valid / computed if computed else 0.0,
        "padding_share_of_padded_pairs": 1.0 - jag / padded if padded else 0.0,
    }


def dense_optimizer(params: list[Any], lr: float, device: str) -> tuple[Any, str]:
    import torch

    try:
        return torch.optim.AdamW(params, lr=lr, fused=True), "AdamW (fused)"
    except (RuntimeError, TypeError):  # no fused kernel for this device
        return torch.optim.AdamW(params, lr=lr, foreach=True), "AdamW (foreach)"


def loss_fn(logits: Any, b: Batch) -> Any:
    """Mean over users of each user's mean BCE over candidates and tasks."""
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), b.labels, reduction="none")
    return (bce.mean(1) * b.weights).sum()


def step_work(a: Arithmetic, training: bool, **extra: Any) -> Work:
    mult = 3 if training else 1
    return Work(
        flops=mult * a.mean("forward_flops"),
        bytes=mult * lookup_bytes(a.resolved.dim, a.mean("tokens")),
        samples=a.counts[0].users,
        tokens=int(a.mean("tokens")),
        model_flops=True,
        flop_convention=FLOP_CONVENTION,
        bytes_convention="item table only: " + BYTES_CONVENTION,
        counts={"candidates": a.mean("candidates")},
        **extra,
    )


def train_setup(
    cfg: HSTUConfig,
    ctx: RunContext,
    init_state: dict[str, Any] | None = None,
    expose: dict[str, Any] | None = None,
) -> Prepared:
    """A training step. `init_state` replaces the initial weights and `expose` receives the model (tests)."""
    built = build(cfg, ctx, True, init_state)
    model, inner, batches, items = built.model, built.inner, built.batches, built.item_inputs
    model.train()
    dopt, dname = dense_optimizer(inner.dense_parameters(), cfg.lr, ctx.device)
    amp = common.autocast(cfg.dtype, ctx)
    if expose is not None:
        expose["model"] = inner
    next_index = common.rotation(range(len(batches)))

    def step() -> Any:
        i = next_index()
        b = batches[i]
        dopt.zero_grad(set_to_none=True)
        with amp():
            logits = model(items[i], b.actions, b.seq)  # (K, T)
        loss = loss_fn(logits, b)
        loss.backward()
        dopt.step()
        inner.items.step()
        return loss.detach()

    def after() -> Info:
        return parts.parts_info(model_pass(inner, dopt, batches, items, amp, True), ctx.device)

    info = {**built.info, **pairs_info(built.arith, built.info["attention"])}
    info["dense_optimizer"] = dname
    info["item_optimizer"] = "row-wise Adagrad " + (
        "fused into backward (FBGEMM)" if inner.items.kind == "fbgemm" else "on sparse gradients"
    )
    if ctx.distributed:
        info["breakdown"] = "not measured across processes"
    return Prepared(
        step=step, work=step_work(built.arith, True), info=info, after=None if ctx.distributed else after
    )


def model_pass(
    inner: Any, dopt: Any, batches: list[Batch], items: list[Any], amp: Any, training: bool
) -> parts.Pass:
    """The step once more in parts, calling mark(part) at each part's end; in training the embedding, the
    preprocessor, the layers and the head are cut apart by detached inputs so each backward is a part."""
    import contextlib

    import torch

    def run(mark: Any, rep: int) -> None:
        i = rep % len(batches)
        b, seq = batches[i], batches[i].seq
        grad = contextlib.nullcontext() if training else torch.no_grad()
        with grad:
            if training:
                dopt.zero_grad(set_to_none=True)
            e = inner.items(items[i])  # (L, C)
            lookup = lookup_bytes(inner.a.dim, seq.num_tokens)
            mark("embedding_fwd", lookup)
            e_in = e.detach().requires_grad_(training)
            with amp():
                pre = torch.cat([e_in, inner.actions(b.actions)], -1)  # (L, 2C)
                x = inner.input_dropout(inner.norm_pre(inner.preprocessor(pre)))  # (L, C)
            mark("preprocessor_fwd")
            x_in = x.detach().requires_grad_(training)
            h = x_in
            with amp():
                for layer in inner.layers:
                    u, q, k, v = layer.project(h)
                    mark("uvqk_projection_fwd")
                    y = layer.attend(q, k, v, seq, inner.path, inner.ops)  # (L, H, V)
                    mark("attention_fwd")
                    h = layer.finish(h, u, y)  # (L, C)
                    mark("output_projection_fwd")
                h = inner.norm(h)
            h_in = h.detach().requires_grad_(training)
            with amp():
                logits = inner.predict(h_in, seq)  # (K, T)
            if not training:
                mark("head_fwd")
                return
            loss = loss_fn(logits, b)
            mark("head_and_loss_fwd")
            parts.backward_in_parts(
                mark, loss, "head_bwd", ((h, h_in, "hstu_layers_bwd"), (x, x_in, "preprocessor_bwd"))
            )
            e.backward(e_in.grad)
            inner.items.step()
            mark("embedding_bwd_and_update", 2 * lookup + 8.0 * seq.num_tokens)  # + row-wise state
            dopt.step()
            mark("dense_optimizer")

    return run


def inference_setup(cfg: HSTUConfig, ctx: RunContext) -> Prepared:
    import torch

    built = build(cfg, ctx, False)
    model, batches, items = built.model, built.batches, built.item_inputs
    model.eval()
    amp = common.autocast(cfg.dtype, ctx)
    next_index = common.rotation(range(len(batches)))

    def step() -> Any:
        i = next_index()
        b = batches[i]
        with torch.no_grad(), amp():
            return model(items[i], b.actions, b.seq)  # (K, T)

    def after() -> Info:
        return parts.parts_info(model_pass(built.inner, None, batches, items, amp, False), ctx.device)

    info = {**built.info, **pairs_info(built.arith, built.info["attention"])}
    if ctx.distributed:
        info["breakdown"] = "not measured across processes"
    return Prepared(
        step=step, work=step_work(built.arith, False), info=info, after=None if ctx.distributed else after
    )


def _attention_inputs(
    cfg: AttentionConfig, ctx: RunContext, r: Any, batches: list[Any], grad_mode: bool
) -> list[tuple[Any, ...]]:
    """Random q, k, v (and the output's gradient) for each batch's tokens, in the dtype the projections
    hand the attention (bf16 / fp16 under autocast)."""
    import torch

    gen = common.generator(ctx, 1, on_device=True)
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.dtype, torch.float32)

    def qkv(n: int) -> tuple[Any, ...]:
        q = torch.randn(
            n, r.n_heads, r.attn_dim, generator=gen, device=ctx.torch_device, dtype=dt
        )  # (L, H, A)
        k = torch.randn(
            n, r.n_heads, r.attn_dim, generator=gen, device=ctx.torch_device, dtype=dt
        )  # (L, H, A)
        v = torch.randn(
            n, r.n_heads, r.linear_dim, generator=gen, device=ctx.torch_device, dtype=dt
        )  # (L, H, V)
        g = torch.randn(n, r.n_heads, r.linear_dim, generator=gen, device=ctx.torch_device, dtype=dt)
        return (q.requires_grad_(grad_mode), k.requires_grad_(grad_mode), v.requires_grad_(grad_mode), g)

    return [qkv(b.seq.num_tokens) for b in batches]


def attention_setup(cfg: AttentionConfig, ctx: RunContext) -> Prepared:
    """One layer's attention on random q, k, v over this rank's users (all layers' shapes are alike)."""
    import torch

    from chipbench.models.hstu import HSTULayer

    if ctx.distributed:
        choose_backend(cfg.backend, ctx.device, ctx.world_size)
    path: Any
    path, path_why = choose_attention(cfg.attention)
    backend, why = choose_backend(cfg.backend, ctx.device, 1)
    ops: Any = "fbgemm" if backend == "fbgemm" else "torch"
    split = common.split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    one = dataclasses.replace(cfg, batch_size=split.per_rank, n_layers=1)
    a = arithmetic(one, ctx.seed, cfg.mode == "fwd_bwd")
    r = a.resolved
    torch.manual_seed(ctx.seed)
    args = dataclasses.replace(model_args(r), relative_bias=cfg.relative_bias)
    layer = HSTULayer(args).to(ctx.torch_device)
    batches = rank_batches(one, r, ctx, cfg.num_batches)
    amp = common.autocast(cfg.dtype, ctx)
    grad_mode = cfg.mode == "fwd_bwd"
    inputs = _attention_inputs(cfg, ctx, r, batches, grad_mode)
    next_index = common.rotation(range(len(batches)))

    def step() -> Any:
        i = next_index()
        q, k, v, g = inputs[i]
        if not grad_mode:
            with torch.no_grad(), amp():
                return layer.attend(q, k, v, batches[i].seq, path, ops)  # (L, H, V)
        q.grad = k.grad = v.grad = None
        with amp():
            y = layer.attend(q, k, v, batches[i].seq, path, ops)  # (L, H, V)
        y.backward(g.to(y.dtype))
        return None

    mult = 3 if grad_mode else 1
    info = {
        "attention": path,
        "attention_reason": path_why,
        "jagged_ops": ops if path == "padded" else "none (per-user blocks)",
        "backend_reason": why,
        "preset": cfg.preset,
        "mode": cfg.mode,
        "history_mean": r.avg_history,
        "history_mean_drawn": sum(h for b in batches for h in b.seq.history)
        / max(1, sum(b.seq.batch_size for b in batches)),
        "candidates_per_user": r.candidates,
        "attention_flops_computed": mult
        * sum(c.attention_flops_computed[path] for c in a.counts)
        / len(a.counts),
        **pairs_info(a, path),
    }
    if ctx.distributed:
        info.update(common.layout_info(split, ctx, cfg.scaling, "independent per rank (attention alone)"))
    return Prepared(
        step=step,
        work=Work(
            flops=mult * a.mean("attention_flops"),
            samples=a.counts[0].users,
            tokens=int(a.mean("tokens")),
            flop_convention="one layer's attention over valid pairs: 2 (A + V) H per pair; fwd+bwd = 3x",
        ),
        info=info,
    )


def embedding_setup(cfg: SequenceEmbeddingConfig, ctx: RunContext) -> Prepared:
    """The item table's lookups of every token of the batch; with fwd_bwd, backward and the update."""
    import torch

    from chipbench.models.hstu import ItemEmbeddings

    backend, why = choose_backend(cfg.backend, ctx.device, 1)
    split = common.split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    one = dataclasses.replace(cfg, batch_size=split.per_rank)
    a = arithmetic(one, ctx.seed, cfg.mode == "fwd_bwd")
    r = a.resolved
    torch.manual_seed(ctx.seed)
    emb = ItemEmbeddings(r.items, r.dim, backend, cfg.lr, ctx.torch_device)  # type: ignore[arg-type]
    batches = rank_batches(one, r, ctx, cfg.num_batches)
    inputs = [emb.prepare(b.items) for b in batches]
    gen = common.generator(ctx, 1, on_device=True)
    grads = [torch.randn(b.seq.num_tokens, r.dim, generator=gen, device=ctx.torch_device) for b in batches]
    fwd_only = cfg.mode == "fwd"
    next_index = common.rotation(range(len(inputs)))

    def step() -> Any:
        i = next_index()
        if fwd_only:
            with torch.no_grad():
                return emb(inputs[i])  # (L, C)
        emb(inputs[i]).backward(grads[i])
        emb.step()
        return None

    tokens = a.mean("tokens")
    fwd_bytes = lookup_bytes(r.dim, tokens)
    info = {
        "backend": backend,
        "backend_reason": why,
        "mode": cfg.mode,
        "preset": cfg.preset,
        "items": r.items,
        "items_capped": r.items != r.items_uncapped,
        "optimizer": "row-wise Adagrad" if not fwd_only else None,
    }
    if ctx.distributed:
        info.update(common.layout_info(split, ctx, cfg.scaling, "independent per rank (a table alone)"))
    return Prepared(
        step=step,
        work=Work(
            bytes=fwd_bytes * (1 if fwd_only else 3),
            tokens=int(tokens),
            samples=a.counts[0].users,
            bytes_convention=BYTES_CONVENTION,
            extra_bytes={"with_indices": fwd_bytes * (1 if fwd_only else 3) + 8.0 * tokens},
        ),
        info=info,
    )
