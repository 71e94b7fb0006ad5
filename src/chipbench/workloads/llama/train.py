"""The Llama training step: the model built from the run seed (or on the meta device when the whole fp32
model would not fit), wrapped for FSDP2 or DDP over several processes, and one AdamW step per call
(`make_trainer`); `train_setup` times it on random tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.wire import Info
from chipbench.platform.device import device_type, torch_dtype
from chipbench.workloads.common import autocast, layout_info
from chipbench.workloads.llama import parts as llama_parts
from chipbench.workloads.llama.accounting import flop_convention_text
from chipbench.workloads.llama.batch import random_tokens, rank_shape
from chipbench.workloads.llama.compiling import CompileChoice, choose_compile
from chipbench.workloads.llama.config import LlamaConfig
from chipbench.workloads.llama.describe import parameter_count
from chipbench.workloads.llama.optimizer import adamw_impl, adamw_kwargs, clip_folds, clip_gradients
from chipbench.workloads.parts import parts_info

INIT_TEXT = {
    "full": "every rank builds the whole model from the run seed (the weights of a one-process run), then shards it",
    "meta": "built on the meta device, sharded, then each rank initializes its own shards (the whole "
    "fp32 model would not fit in half the free memory; weights differ from a one-process run)",
}


def _init_mode(cfg: LlamaConfig, ctx: RunContext) -> str:
    """full: build the whole fp32 model on every rank, then shard it (same weights as one process).
    meta: under FSDP2 when the whole fp32 model would take more than half the free memory."""
    if not (ctx.distributed and cfg.parallel == "fsdp2" and ctx.free_memory_bytes):
        return "full"
    full = 4 * parameter_count(cfg.shape())
    return "full" if 2 * full <= ctx.free_memory_bytes else "meta"


def _parallelize(model: Any, cfg: LlamaConfig, ctx: RunContext) -> tuple[Any, Info]:
    """Wrap the (fully built, identically initialized) model for ctx.world_size processes: FSDP2
    (fully_shard per transformer block, then the root) or DDP. Returns (module to train, info)."""
    import torch

    low = torch_dtype(cfg.dtype) if cfg.dtype in ("bf16", "fp16") else None
    if cfg.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        dev = torch.device(ctx.torch_device)
        ids = [dev] if dev.type in ("cuda", "xpu") and dev.index is not None else None
        wrapped = DistributedDataParallel(model, device_ids=ids)
        amp = f"{cfg.dtype} autocast over " if low is not None else ""
        return wrapped, {"mixed_precision": f"{amp}fp32 replicas, gradients all-reduced in fp32"}

    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device_type(ctx.device), (ctx.world_size,))
    if low is not None:
        # Weights all-gathered in the low dtype (no autocast copies of them), gradients reduced in fp32
        # into fp32 sharded master weights; autocast stays on around the forward and the loss, so the
        # ops autocast runs in fp32 (softmax, cross-entropy) do so as with one process.
        mp = MixedPrecisionPolicy(param_dtype=low, reduce_dtype=torch.float32)
        name = {"bf16": "bf16", "fp16": "fp16"}[cfg.dtype]
        precision = f"FSDP2 MixedPrecisionPolicy(param_dtype={name}, reduce_dtype=fp32) + {name} autocast"
    else:
        mp = MixedPrecisionPolicy()
        precision = "fp32 (all-gather and reduce-scatter in fp32)"
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        # The last block is not resharded after the forward: the backward starts with it (torchtitan).
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(layers) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model, {"mixed_precision": precision, "fsdp_units": len(layers) + 1}


@dataclass(frozen=True)
class Trainer:
    """A Llama model and its training step, as `make_trainer` builds them."""

    model: Any
    """The module trained: wrapped (FSDP2, DDP) over more than one process."""
    train: Callable[[Any, Any], Any]
    """train(inputs, targets) -> loss: one optimizer step per call."""
    info: Info
    """What the result records of the optimizer, clip, precision and layout."""
    optimizer: Callable[[], Any]
    """The AdamW the step uses now (a fall-back from fused replaces it on the first step)."""
    clip_folds: bool
    """Whether the clip is folded into the fused AdamW step (`optimizer.clip_gradients`)."""


def make_trainer(cfg: LlamaConfig, ctx: RunContext, compiled: CompileChoice | None = None) -> Trainer:
    """The model and its training step (`Trainer`): one optimizer step per `train` call.

    Over more than one process (ctx.distributed, default process group already initialized), every
    rank builds the same model from the run seed (so every rank, and a one-process run, start from
    the same weights), then it is sharded (cfg.parallel=fsdp2) or replicated (ddp); the returned loss
    is this rank's, over its own rows. Under FSDP2, when the whole fp32 model would not fit in half
    the free memory, it is built on the meta device instead and each rank initializes its shards.
    A fall-back from fused AdamW, taken on the first step, is added to `info` then.

    Compiled (`compiled.on`; default: as cfg.compile asks, at this step's size), the model and its loss
    run as one compiled function. On one process with fused AdamW and no loss scaling, the clip's
    scaling is folded into the fused step (`optimizer.clip_gradients`)."""
    import torch
    import torch.nn.functional as F

    model, par_info = _build_model(cfg, ctx)
    impl = adamw_impl(cfg.adamw_impl, device_type(ctx.device))
    info: Info = {}
    o = _Optimizer(list(model.parameters()), cfg, ctx, impl, info)  # after sharding: DTensors under FSDP2
    if compiled is None:
        compiled = choose_compile(cfg.compile, step_flops(cfg, cfg.shape()), device_type(ctx.device))

    def forward_loss(inputs: Any, targets: Any) -> Any:
        logits = model(inputs)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    loss_of = torch.compile(forward_loss) if compiled.on else forward_loss
    amp = autocast(cfg.dtype, ctx)
    scaler = o.scaler

    def train(inputs: Any, targets: Any) -> Any:
        with amp():
            loss = loss_of(inputs, targets)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(o.opt)
            o.clip()
            o.step()
            scaler.update()
        else:
            loss.backward()
            o.clip()
            o.step()
        o.opt.zero_grad(set_to_none=True)
        return loss.detach()

    info.update(
        {
            "optimizer": f"AdamW {impl}",
            "compile": compiled.on,
            "compile_choice": compiled.why,
            "clip": "norm 1.0, folded into the fused AdamW step (its grad_scale)"
            if o.fold
            else "clip_grad_norm_(1.0, foreach)",
            "precision": PRECISION_TEXT[cfg.dtype],
            **par_info,
        }
    )
    return Trainer(model, train, info, lambda: o.opt, o.fold)


PRECISION_TEXT = {
    "fp32": "fp32",
    "bf16": "bf16 autocast, fp32 master weights",
    "fp16": "fp16 autocast, fp32 master weights, GradScaler",
}


def _build_model(cfg: LlamaConfig, ctx: RunContext) -> tuple[Any, Info]:
    """The model in training mode, initialized from the run seed and wrapped over the processes (see
    `make_trainer`); with what the result records of its layout."""
    import warnings

    import torch

    from chipbench.models.llama import Transformer

    init = _init_mode(cfg, ctx)
    with torch.device("meta"):  # drawn once below: nn.Linear's own initialization would be drawn over
        model = Transformer(cfg.shape().model_args(), activation_checkpointing=cfg.activation_checkpointing)
    model.train()
    if init == "full":
        model.materialize(ctx.torch_device)
        torch.manual_seed(ctx.seed)
        model.init_weights()
    par_info: Info = {}
    if ctx.distributed:
        model, par_info = _parallelize(model, cfg, ctx)
        par_info["init"] = INIT_TEXT[init]
    if init == "meta":
        model.to_empty(device=ctx.torch_device)  # this rank's shards only
        model.reset_rope(ctx.torch_device)
        # Each rank draws its own shards (CUDA: DTensor's RNG tracker, from rank 0's state).
        torch.manual_seed(ctx.seed + ctx.rank)
        with warnings.catch_warnings():  # "DTensor random operators may not have complete support on cpu"
            warnings.filterwarnings("ignore", message="DTensor random operators")
            model.init_weights()
    return model, par_info


class _Optimizer:
    """The training step's AdamW (under a GradScaler for fp16) and its gradient clip. A fused AdamW that
    fails on the first step over sharded parameters is replaced by foreach, the fall-back recorded in
    `info`."""

    def __init__(self, params: list[Any], cfg: LlamaConfig, ctx: RunContext, impl: str, info: Info) -> None:
        import torch

        self.params, self.lr, self.info = params, cfg.lr, info
        self.may_fall_back = ctx.distributed and impl == "fused"
        self.first = True
        self.opt = self.adamw(impl)
        self.scaler = torch.amp.GradScaler(device_type(ctx.device)) if cfg.dtype == "fp16" else None
        # The clip folded into fused AdamW (one process: a sharded norm is a collective clip_grad_norm_ does).
        self.fold = clip_folds(impl, self.scaler is not None, ctx.distributed)

    def adamw(self, impl: str) -> Any:
        import torch

        return torch.optim.AdamW(
            self.params, lr=self.lr, betas=(0.9, 0.95), weight_decay=0.1, **adamw_kwargs(impl)
        )

    def clip(self) -> None:
        clip_gradients(self.params, self.opt, self.fold)

    def step(self) -> None:
        try:
            if self.scaler is None:
                self.opt.step()
            else:
                self.scaler.step(self.opt)
        except (RuntimeError, NotImplementedError) as exc:
            if not (self.first and self.may_fall_back):
                raise
            # Fused AdamW over sharded (DTensor) parameters needs a torch with the kernel's sharding
            # rule; without one, the first step falls back to foreach, and the fall-back is recorded.
            self.opt = self.adamw("foreach")
            self.info["optimizer"] = "AdamW foreach"
            self.info["optimizer_fallback"] = f"fused AdamW failed on sharded parameters: {str(exc)[:300]}"
            if self.scaler is None:
                self.opt.step()  # (under GradScaler this one step is skipped: its gradients were unscaled)
        self.first = False


def step_flops(cfg: LlamaConfig, s: Any) -> float:
    """Model FLOPs of one training step of shape `s` (cfg's convention)."""
    from chipbench.models.llama import flops_per_token

    return flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention) * s.tokens


def train_setup(cfg: LlamaConfig, ctx: RunContext) -> Prepared:
    from chipbench.models.llama import count_params, flops_per_token

    s, split = rank_shape(cfg, ctx.world_size)  # s.batch_size: this process's rows
    # On the configured step, not this process's rows: every process count of a sweep decides alike.
    compiled = choose_compile(cfg.compile, step_flops(cfg, cfg.shape()), device_type(ctx.device))
    trainer = make_trainer(cfg, ctx, compiled)
    model, train, info = trainer.model, trainer.train, trainer.info
    tokens = random_tokens(s, ctx, global_batch=split.global_batch)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (B, T) each
    state: dict[str, Any] = {"first_s": None}

    def step() -> Any:
        if state["first_s"] is None:
            t0 = time.perf_counter()
            out = train(inputs, targets)
            out.item()  # waits for the device
            state["first_s"] = time.perf_counter() - t0
            return out
        return train(inputs, targets)

    def after() -> Info:
        key = "compile_first_step_s" if compiled.on else "first_step_s"
        fallback = (
            {k: info[k] for k in ("optimizer", "optimizer_fallback")} if "optimizer_fallback" in info else {}
        )
        out: Info = {key: state["first_s"], **fallback}
        if not ctx.distributed:  # parts run alone would call sharded modules outside their collectives
            # The step's own optimizer and clip, warm from the timed steps.
            amp = autocast(cfg.dtype, ctx)
            run = llama_parts.train_pass(model, trainer.optimizer(), inputs, targets, amp, trainer.clip_folds)
            # Compiled, the step never ran the eager kernels the parts pass runs: one untimed pass first.
            warm = 1 if compiled.on else 0
            out.update(parts_info(run, ctx.device, note=llama_parts.PARTS_NOTE[compiled.on], warmup=warm))
        return out

    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention)
    return Prepared(
        step=step,
        work=Work(  # one process's work: its own rows
            flops=fpt * s.tokens,
            tokens=s.tokens,
            samples=s.batch_size,
            model_flops=True,
            flop_convention=flop_convention_text(cfg.flop_convention),
        ),
        info={
            **info,
            **layout_info(split, ctx, cfg.scaling, cfg.parallel if ctx.distributed else "none"),
            "flavor": cfg.flavor,
            "shape": s.__dict__,
            "parameters": count_params(model),
            "flops_per_token": fpt,
            "activation_checkpointing": cfg.activation_checkpointing,
        },
        after=after,
    )
