"""The Llama prefill forward: inference over random tokens, weights in the run dtype, no gradients."""

from __future__ import annotations

from typing import Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.wire import Info
from chipbench.platform.device import device_type, torch_dtype
from chipbench.workloads.common import layout_info
from chipbench.workloads.llama import parts as llama_parts
from chipbench.workloads.llama.accounting import flop_convention_text
from chipbench.workloads.llama.batch import random_tokens, rank_shape
from chipbench.workloads.llama.compiling import choose_compile
from chipbench.workloads.llama.config import LlamaConfig
from chipbench.workloads.parts import parts_info


def forward_setup(cfg: LlamaConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models.llama import Transformer, flops_per_token

    # Over N processes: data parallel without communication, each its own rows of the global batch
    # and a whole copy of the model (`parallel` does not apply to inference).
    s, split = rank_shape(cfg, ctx.world_size)  # s.batch_size: this process's rows
    # Built on the meta device and drawn once, in the run dtype: nn.Linear's own initialization, drawn
    # over by init_weights, and an fp32 copy to cast from would double the set-up of a large model.
    with torch.device("meta"):
        model = Transformer(s.model_args())
    model = model.to(torch_dtype(cfg.dtype)).materialize(ctx.torch_device).eval()
    torch.manual_seed(ctx.seed)
    model.init_weights()  # inference: weights in the run dtype
    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention, training=False)
    # On the configured step, not this process's rows: every process count of a sweep decides alike.
    compiled = choose_compile(cfg.compile, fpt * cfg.shape().tokens, device_type(ctx.device))
    fwd = torch.compile(model) if compiled.on else model
    tokens = random_tokens(s, ctx, extra=0, global_batch=split.global_batch)  # (B, T)

    @torch.inference_mode()
    def step() -> Any:
        return fwd(tokens)  # (B, T, V); the first call, which compiles, the engine times apart

    def after() -> Info:
        note = llama_parts.PARTS_NOTE[compiled.on]
        # Compiled, the step never ran the eager kernels the parts pass runs: one untimed pass first.
        warm = 1 if compiled.on else 0
        return parts_info(llama_parts.forward_pass(model, tokens), ctx.device, note=note, warmup=warm)

    return Prepared(
        step=step,
        after=after,
        work=Work(
            flops=fpt * s.tokens,
            tokens=s.tokens,
            samples=s.batch_size,
            model_flops=True,
            flop_convention=flop_convention_text(cfg.flop_convention, training=False),
        ),
        info={
            "flavor": cfg.flavor,
            "shape": s.__dict__,
            "flops_per_token": fpt,
            "compile": compiled.on,
            "compile_choice": compiled.why,
            **layout_info(split, ctx, cfg.scaling, "none"),
        },
    )
