"""Which AdamW kernels the training step and the AdamW microbenchmark use."""

from __future__ import annotations

from typing import Any


def adamw_impl(requested: str, dev_type: str) -> str:
    """auto: fused where torch's fused AdamW runs on the device (probed once per process). On the 2-core
    CPU the fused step over 57M parameters took about 50 ms against about 590 ms for foreach."""
    if requested != "auto":
        return requested
    from chipbench.platform.capabilities import fused_adamw

    return "fused" if fused_adamw(dev_type).ok else "foreach"


def adamw_kwargs(impl: str) -> dict[str, Any]:
    """torch.optim.AdamW's keyword selecting the kernels of `impl` (fused or foreach)."""
    return {"fused": True} if impl == "fused" else {"foreach": True}


def clip_folds(impl: str, loss_scaling: bool, distributed: bool) -> bool:
    """Whether the clip's scaling folds into the optimizer step: fused AdamW on one process without loss
    scaling (GradScaler owns grad_scale; a sharded norm is a collective that clip_grad_norm_ does)."""
    return impl == "fused" and not loss_scaling and not distributed


def clip_gradients(params: list[Any], opt: Any, fold: bool, max_norm: float = 1.0) -> None:
    """Clip the gradients' global norm at max_norm before `opt.step()`.

    fold=False: clip_grad_norm_ (a norm pass, then a pass that reads and rescales every gradient; under
    FSDP2 the norm of DTensor shards is the global one). fold=True (fused AdamW, one process, no loss
    scaling): the norm pass only; the fused step, which reads each gradient anyway, divides it by
    max(1, (norm + 1e-6) / max_norm), the factor clip_grad_norm_ multiplies by (its `grad_scale`, as
    under GradScaler; an fp32 scalar, as the fp32 master weights want), and writes it back: one read of
    the gradients fewer."""
    import torch

    if not fold:
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        return
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    opt.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
