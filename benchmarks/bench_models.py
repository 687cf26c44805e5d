"""Training-step and inference throughput (spectra/s) of every registered architecture.

    python benchmarks/bench_models.py                      # paper size, CPU, 2 threads
    python benchmarks/bench_models.py --device cuda --batch 256 --steps 20
    python benchmarks/bench_models.py --size quick --precision fp32 bf16   # bf16 autocast against fp32, same run
"""
from __future__ import annotations

import argparse
import time

import torch

from specvit_core.models import build_model, list_models, n_params


def throughput(fn, *, batch: int, steps: int, warmup: int, device: torch.device) -> float:
    """Spectra per second of ``fn()`` (one batch per call) over ``steps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def bench(name: str, *, size: str, batch: int, steps: int, warmup: int, device: torch.device,
          precision: str = "fp32") -> dict:
    """Train-step (forward, L1 loss, backward, AdamW step) and inference throughput of one model, the forward
    pass under autocast to bf16 when ``precision`` is "bf16" (as ``TrainConfig.precision``)."""
    model = build_model(name, size).to(device)
    x = torch.randn(batch, 4096, device=device)
    y = torch.randn(batch, 1, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def forward():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return model(x).float()

    def train_step():
        loss = torch.nn.functional.l1_loss(forward(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        with torch.inference_mode():
            forward()

    model.train()
    train = throughput(train_step, batch=batch, steps=steps, warmup=warmup, device=device)
    model.eval()
    inference = throughput(infer, batch=batch, steps=steps, warmup=warmup, device=device)
    return dict(name=name, family=model.config["family"], n_params=n_params(model), precision=precision, train=train,
                infer=inference)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--models", nargs="*", default=None, help="names (default: all registered)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                        help="forward-pass arithmetic(s) to time, each model in each (default: fp32)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"size={args.size}  batch={args.batch}  steps={args.steps} (after {args.warmup} warm-up)  device={label}")
    print(f"{'model':15s} {'family':12s} {'params':>10s} {'precision':>9s} {'train spec/s':>13s} {'infer spec/s':>13s}"
          f" {'train vs first':>15s}")
    for name in args.models or list_models():
        first = None
        for precision in args.precision:
            r = bench(name, size=args.size, batch=args.batch, steps=args.steps, warmup=args.warmup, device=device,
                      precision=precision)
            first = first or r["train"]
            print(f"{r['name']:15s} {r['family']:12s} {r['n_params']:>10,d} {precision:>9s} {r['train']:>13.1f} "
                  f"{r['infer']:>13.1f} {r['train'] / first:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
