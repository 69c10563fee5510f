"""Cost of identifiability: one LIDVAE training step ÷ one same-width VAE step, on CPU (goal ≤ 3×).

Each model runs in its own subprocess so that peak resident memory (``resource.getrusage``) is its own. A step
is ``Method.train_step`` (forward, ELBO, backward — a gradient of a gradient for the Brenier maps — clipping,
RMSprop) on dynamically binarised Fashion-MNIST batches of 128 (random grey images if the data set is not
installed). Prints per-step time (median over timed steps), peak memory, an epoch-time estimate for the
60 000 training images, and the LIDVAE/VAE ratios.

Usage: ``python benchmarks/lidvae_step.py [--latent 64] [--hidden 512] [--batch 128] [--steps 30]
[--threads N]``. On a loaded or shared machine pass ``--threads 1``: oversubscribed torch threads
spin and make the timings meaningless.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys


def worker(args) -> dict:
    import resource
    import statistics
    import time

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from identkit.neural.models import LIDVAE, VAE
    from identkit.neural.train import Method, make_optimizer

    try:
        from identkit.data import load_fashion_mnist

        x, _ = load_fashion_mnist(n=args.batch * 8, seed=0)
        source = "fashion-mnist"
    except FileNotFoundError:
        x = torch.rand(args.batch * 8, 784, generator=torch.Generator().manual_seed(0))
        source = "random"
    gen = torch.Generator().manual_seed(0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cls = {"vae": VAE, "lidvae": LIDVAE}[args.model]
    model = cls(784, args.latent, hidden=args.hidden, seed=0)
    opt = make_optimizer(model.parameters(), "rmsprop", 1e-3)
    method = Method()
    method.clip_grad = 5.0
    times = []
    for step in range(args.warmup + args.steps):
        xb = torch.bernoulli(x[(step % 8) * args.batch:((step % 8) + 1) * args.batch], generator=gen)
        t0 = time.perf_counter()
        method.train_step(model, opt, xb, step, gen)
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": args.model, "step_s": statistics.median(times), "peak_rss_mib": peak_rss / 1024,
            "extra_rss_mib": (peak_rss - base_rss) / 1024, "params": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads(), "data": source}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--model", choices=["vae", "lidvae"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.model:  # subprocess mode
        print(json.dumps(worker(args)))
        return 0
    res = {}
    for model in ("vae", "lidvae"):
        cmd = [sys.executable, __file__, "--model", model] + [
            f"--{k}={getattr(args, k)}" for k in ("latent", "hidden", "batch", "steps", "warmup", "threads")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        res[model] = json.loads(out)
    steps_per_epoch = math.ceil(60000 / args.batch)
    print(f"LIDVAE vs VAE, latent {args.latent}, hidden {args.hidden}, batch {args.batch}, "
          f"{res['vae']['threads']} CPU thread(s), data: {res['vae']['data']}")
    print(f"{'model':8s} {'params':>9s} {'step (ms)':>10s} {'epoch (s)':>10s} {'peak RSS (MiB)':>15s} "
          f"{'model+train RSS (MiB)':>22s}")
    for m in ("vae", "lidvae"):
        r = res[m]
        print(f"{m:8s} {r['params']:9d} {1e3 * r['step_s']:10.1f} {r['step_s'] * steps_per_epoch:10.1f} "
              f"{r['peak_rss_mib']:15.1f} {r['extra_rss_mib']:22.1f}")
    ratio = res["lidvae"]["step_s"] / res["vae"]["step_s"]
    mem = res["lidvae"]["extra_rss_mib"] / max(res["vae"]["extra_rss_mib"], 1e-9)
    print(f"step-time ratio LIDVAE/VAE: {ratio:.2f}x (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'})")
    print(f"memory ratio LIDVAE/VAE (RSS growth for model + training): {mem:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
