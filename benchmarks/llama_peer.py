"""The Llama performance goal of issue #15: `llama.train_step` against Hugging Face transformers'
`LlamaForCausalLM` (SDPA attention), same shapes, same dtype, same optimizer, same data, interleaved.

The ~58M model of the issue: dim 512, 8 layers, 8 heads, 4 KV heads, FFN 1536, vocab 32000, T 256, batch
4, AdamW (lr 3e-4, betas 0.9/0.95, weight decay 0.1, the same fused/foreach kind), gradient clipping at 1.0,
cross-entropy over every position. Each round measures every variant once through the same engine, in a
fresh seeded order; the goal is judged on the per-round ratio transformers / chipbench (step time), its
median and 95% CI (exact binomial), as `benchmarks/dlrm_goal.py` does. The shared host drifts 1.0-2.4x
between single runs: only interleaved ratios mean anything.

Variants: `chipbench` is the default config (compile=auto: at this step's 2.7e11 FLOPs, compiled, the
compile reported apart and kept out of the rounds); `chipbench-eager` is compile=false.

Needs the `peers` extra (`make peers`: transformers, pinned in pyproject.toml); never run by `make test`.

Run: .venv/bin/python benchmarks/llama_peer.py [--dtype fp32|bf16] [--rounds 9] [--json results/...json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from chipbench import workloads
from chipbench.core.contract import RunContext
from interleave import engine_ms, process_setup, ratio, run_record, run_rounds

SHAPE = {
    "flavor": "tiny",
    "dim": 512,
    "n_layers": 8,
    "n_heads": 8,
    "n_kv_heads": 4,
    "vocab_size": 32000,
    "multiple_of": 256,  # int(8 * 512 / 3) = 1365 -> 1536
    "seq_len": 256,
    "batch_size": 4,
}
LR = 3e-4


def chipbench_step(dtype: str, compile_: bool | str) -> tuple[Any, dict[str, Any]]:
    b = workloads.get("llama.train_step")
    cfg = b.config({**SHAPE, "dtype": dtype, "compile": compile_, "lr": LR})
    p = b.setup(cfg, RunContext(device="cpu", torch_device="cpu", seed=0))
    keys = ("optimizer", "clip", "precision", "parameters", "compile", "compile_choice")
    return p.step, {k: p.info.get(k) for k in keys}


def transformers_step(dtype: str) -> tuple[Any, dict[str, Any]]:
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    conf = LlamaConfig(
        hidden_size=SHAPE["dim"],
        intermediate_size=1536,
        num_hidden_layers=SHAPE["n_layers"],
        num_attention_heads=SHAPE["n_heads"],
        num_key_value_heads=SHAPE["n_kv_heads"],
        vocab_size=SHAPE["vocab_size"],
        max_position_embeddings=SHAPE["seq_len"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(conf).train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, SHAPE["vocab_size"], (SHAPE["batch_size"], SHAPE["seq_len"] + 1), generator=g)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (B, T) each, as llama.train_step
    low = torch.bfloat16 if dtype == "bf16" else None

    def step() -> Any:
        with torch.autocast("cpu", dtype=low, enabled=low is not None):
            logits = model(input_ids=inputs).logits  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    n = sum(p.numel() for p in params)
    return step, {"transformers": transformers.__version__, "parameters": n, "optimizer": "AdamW fused"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--time-budget", type=float, default=3.0, help="seconds per variant and round")
    ap.add_argument("--no-eager", action="store_true", help="leave out chipbench with compile=false")
    ap.add_argument("--json", help="write the round medians and the verdict here")
    ap.add_argument("--seed", type=int, default=0, help="seed of the per-round variant order")
    args = ap.parse_args()
    process_setup()

    steps: dict[str, Any] = {}
    info: dict[str, Any] = {}
    steps["transformers"], info["transformers"] = transformers_step(args.dtype)
    steps["chipbench"], info["chipbench"] = chipbench_step(args.dtype, "auto")  # the default
    if not args.no_eager:
        steps["chipbench-eager"], info["chipbench-eager"] = chipbench_step(args.dtype, False)
    names = list(steps)
    for n in names:
        steps[n]()  # first step (compilation) outside the rounds
        print(f"{n}: {info[n]}", flush=True)
    t0 = time.time()
    rounds, _ = run_rounds(
        names, lambda n: statistics.median(engine_ms(steps[n], args.time_budget)), args.rounds, args.seed
    )
    tokens = SHAPE["batch_size"] * SHAPE["seq_len"]
    verdict: dict[str, Any] = {
        "shape": SHAPE,
        "dtype": args.dtype,
        "variants": info,
        **run_record(args.rounds, args.time_budget, t0),
        "step_ms_rounds": rounds,
        "tokens_per_s_median_of_rounds": {n: tokens / statistics.median(v) * 1e3 for n, v in rounds.items()},
        "goal": 1.15,
    }
    print()
    for n in names[1:]:
        v = verdict[f"transformers_over_{n}"] = ratio(rounds["transformers"], rounds[n])
        lo, hi = v["ci95"]
        print(f"transformers / {n}: median {v['median']:.3f}x, 95% CI [{lo:.3f}, {hi:.3f}] (goal 1.15x)")
    for n, v in verdict["tokens_per_s_median_of_rounds"].items():
        print(f"{n:18s} {v:8.0f} tokens/s (median of round medians)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(verdict, f, indent=1)
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
