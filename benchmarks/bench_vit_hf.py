"""SpecViT training step vs. the same ViT built from HuggingFace ``transformers.ViTModel``, in one run.

The HF model treats a spectrum as a (1 x L) one-channel image with (1 x P) patches, as the original code did;
it gets SpecViT's weights (so both compute the same function, checked below) and a linear head on [CLS].
Both train with the same batch, L1 loss and AdamW step; their steps are interleaved (round-robin, rotating
order) and the median step time of each is reported, with the ratio ours / HF. "SpecViT, torch dropout" is the same
SpecViT with PyTorch's CPU dropout and SDPA's dropout (``blocks.torch_dropout``): the step before the numpy masks.
``--compile`` adds SpecViT under ``torch.compile`` (inductor; its compile time is printed, not timed). The achieved GFLOP/s of a
step (FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``, checked against the analytic count) is
compared with the fp32 matmul peak measured in the same run. ``--profile`` adds torch.profiler's top ops of
one SpecViT training step. Needs ``pip install transformers`` (not a dependency of specvit_core).

    python benchmarks/bench_vit_hf.py                              # batch 32 and 64, 2 threads
    python benchmarks/bench_vit_hf.py --batch 32 --steps 5 --profile
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from transformers import ViTConfig, ViTModel

from specvit_core.models import build_model, n_params
from specvit_core.models.blocks import torch_dropout


class HFViTRegressor(nn.Module):
    """HF ``ViTModel`` (no pooler) on spectra (B, L) seen as (B, 1, 1, L) images, linear head on [CLS]."""

    def __init__(self, config: ViTConfig, n_outputs: int):
        super().__init__()
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.head = nn.Linear(config.hidden_size, n_outputs)

    def forward(self, x):
        return self.head(self.vit(pixel_values=x[:, None, None, :]).last_hidden_state[:, 0])


def hf_twin(ours: nn.Module, attn: str) -> HFViTRegressor:
    """The HF ViT with SpecViT's configuration and a copy of its weights (fused qkv split into q, k, v)."""
    c = ours.config
    config = ViTConfig(
        hidden_size=c["dim"], num_hidden_layers=c["depth"], num_attention_heads=c["heads"],
        intermediate_size=c["mlp_dim"], hidden_act="gelu", hidden_dropout_prob=c["dropout"],
        attention_probs_dropout_prob=c["dropout"], layer_norm_eps=1e-5, image_size=(1, ours.n_pixels),
        patch_size=(1, c["patch_size"]), num_channels=1, qkv_bias=True, attn_implementation=attn,
    )
    hf = HFViTRegressor(config, c["n_outputs"])
    emb, tok = hf.vit.embeddings, ours.to_tokens.proj
    with torch.no_grad():
        emb.patch_embeddings.projection.weight.copy_(tok.weight.unsqueeze(2))  # (D, 1, P) -> (D, 1, 1, P)
        emb.patch_embeddings.projection.bias.copy_(tok.bias)
        emb.cls_token.copy_(ours.cls_token)
        emb.position_embeddings.copy_(ours.pos_embedding)
        for layer, block in zip(hf.vit.layers, ours.encoder.blocks):
            for name, part in zip(("q_proj", "k_proj", "v_proj"), block.attn.to_qkv.weight.chunk(3)):
                getattr(layer.attention, name).weight.copy_(part)
            for name, part in zip(("q_proj", "k_proj", "v_proj"), block.attn.to_qkv.bias.chunk(3)):
                getattr(layer.attention, name).bias.copy_(part)
            layer.attention.o_proj.load_state_dict(block.attn.to_out[0].state_dict())
            layer.layernorm_before.load_state_dict(block.norm1.state_dict())
            layer.layernorm_after.load_state_dict(block.norm2.state_dict())
            layer.mlp.fc1.load_state_dict(block.mlp.net[0].state_dict())
            layer.mlp.fc2.load_state_dict(block.mlp.net[2].state_dict())
        hf.vit.layernorm.load_state_dict(ours.encoder.norm.state_dict())
        hf.head.load_state_dict(ours.head.state_dict())
    return hf


def max_output_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    """Largest |a(x) - b(x)| in eval mode (no dropout)."""
    a.eval(), b.eval()
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def make_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, torch_masks: bool = False):
    """A closure running one training step: forward, L1 loss, backward, AdamW step.

    ``torch_masks`` runs it with PyTorch's own CPU dropout (:func:`specvit_core.models.blocks.torch_dropout`).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = F.l1_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def step_with_torch_dropout():
        with torch_dropout():
            step()

    return step_with_torch_dropout if torch_masks else step


def interleaved_medians(steps: dict, *, n: int, warmup: int) -> dict:
    """Median seconds per call of each closure, calling them round-robin (order rotated every round)."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for i in range(n):
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_peak_gflops(n: int = 2048, reps: int = 10, rounds: int = 5) -> float:
    """Best-of-``rounds`` fp32 GFLOP/s of ``torch.mm`` on two (n, n) matrices (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def counted_flops(model: nn.Module, n_pixels: int, batch: int) -> int:
    """FLOPs of forward + backward of a training step (matmuls, convolutions, attention) by FlopCounterMode.

    Counted on one spectrum and multiplied by ``batch`` (every counted op is linear in the batch size).
    """
    model.train()
    with FlopCounterMode(display=False) as counter:
        F.l1_loss(model(torch.randn(1, n_pixels)), torch.randn(1, 1)).backward()
    model.zero_grad(set_to_none=True)
    return batch * counter.get_total_flops()


def analytic_flops(c: dict, n_pixels: int, batch: int) -> float:
    """Matmul FLOPs of a training step: 3 x forward (backward = 2 x forward), minus the tokenizer's input grad.

    Forward per spectrum, with N = L / P patches, T = N + 1 tokens (2 FLOPs per multiply-add):
    tokenizer 2 N P D; per layer T (8 D^2 + 4 D F) [qkv 6 T D^2, out 2 T D^2, MLP 4 T D F] + 4 T^2 D
    [Q K^T and A V]; head 2 D.
    """
    D, F_, P, N = c["dim"], c["mlp_dim"], c["patch_size"], n_pixels // c["patch_size"]
    T = N + 1
    tokenizer = 2 * N * P * D
    encoder = c["depth"] * (T * (8 * D**2 + 4 * D * F_) + 4 * T**2 * D) + 2 * D * c["n_outputs"]
    return batch * (2 * tokenizer + 3 * encoder)  # the tokenizer's backward needs only its weight gradient


def profile_step(step, *, rows: int) -> str:
    """torch.profiler table (CPU, sorted by self CPU time) of one training step after a warm-up call."""
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=7, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--attn", nargs="+", default=["sdpa", "eager"], help="HF attn_implementation(s)")
    parser.add_argument("--profile", action="store_true", help="print the top ops of one SpecViT step")
    parser.add_argument("--compile", action="store_true", help="also time SpecViT under torch.compile")
    parser.add_argument("--rows", type=int, default=15, help="profiler rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours = build_model("specvit", "paper")
    hfs = {f"HF {attn}": hf_twin(ours, attn) for attn in args.attn}
    x_check = torch.randn(4, ours.n_pixels)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"torch {torch.__version__}, {args.threads} threads; SpecViT paper size, {n_params(ours):,d} params")
    for name, hf in hfs.items():
        print(f"{name}: {n_params(hf):,d} params, max |ours - HF| (eval, same weights) = "
              f"{max_output_difference(ours, hf, x_check):.1e}")
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak (torch.mm 2048^2, best of 5): {peak:.1f} GFLOP/s")

    before = "SpecViT, torch dropout"
    print(f"\n{'batch':>5s} {'model':22s} {'step s':>8s} {'this/ours':>9s} {'GFLOP/step':>10s} {'GFLOP/s':>8s} "
          f"{'% peak':>6s}")
    for batch in args.batch:
        x, y = torch.randn(batch, ours.n_pixels), torch.randn(batch, 1)
        models = {"SpecViT": ours, before: copy.deepcopy(ours), **hfs}
        if args.compile:
            models["SpecViT, torch.compile"] = torch.compile(copy.deepcopy(ours))
        # the SpecViT variants compute the same function: count it once (and do not trace the compiled one early)
        flops = {name: counted_flops(m, ours.n_pixels, batch) for name, m in {"SpecViT": ours, **hfs}.items()}
        flops.update({name: flops["SpecViT"] for name in models if name.startswith("SpecViT,")})
        for m in models.values():
            m.train()
        steps = {name: make_train_step(m, x, y, torch_masks=name == before) for name, m in models.items()}
        if args.compile:
            start = time.perf_counter()
            steps["SpecViT, torch.compile"]()
            print(f"torch.compile: first step (compiling) {time.perf_counter() - start:.0f} s", flush=True)
        medians = interleaved_medians(steps, n=args.steps, warmup=args.warmup)
        for name, seconds in medians.items():
            gflops = flops[name] / seconds / 1e9
            print(f"{batch:>5d} {name:22s} {seconds:>8.3f} {seconds / medians['SpecViT']:>9.3f} "
                  f"{flops[name] / 1e9:>10.1f} {gflops:>8.1f} {100 * gflops / peak:>6.1f}", flush=True)
        print(f"{'':5s} analytic FLOPs (see analytic_flops): "
              f"{analytic_flops(ours.config, ours.n_pixels, batch) / 1e9:.1f} GFLOP/step")
    print(f"fp32 matmul peak after the runs: {matmul_peak_gflops():.1f} GFLOP/s; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")

    if args.profile:
        batch = min(args.batch)
        ours.train()
        step = make_train_step(ours, torch.randn(batch, ours.n_pixels), torch.randn(batch, 1))
        print(f"\nSpecViT training step, batch {batch}, top ops by self CPU time:")
        print(profile_step(step, rows=args.rows))


if __name__ == "__main__":
    main()
