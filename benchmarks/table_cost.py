"""What the full Table 1 costs: one training step of every method at the table's settings, and the projection.

For each method of :data:`identkit.table.METHODS` (built by :func:`identkit.table.build_method` at the full-mode
settings: latent 64, hidden 512, batch 100) this times ``Method.train_step`` on dynamically binarised batches
(Fashion-MNIST if installed, else random grey images) and prints the median seconds per step, the ratio to the
VAE's step, and the projected training time of one (method, seed) run: steps per epoch × epochs. The lagging
encoder is timed in its aggressive phase with ``--lagging-inner`` encoder steps per outer step (its worst case
is ``lagging_max_inner`` = 100; He et al. report the phase ends within a few epochs), so its projection is an
upper bound; evaluation (AU/KL/MI and the S = 500 importance-weighted LL) is not included.

Usage: ``python benchmarks/table_cost.py [--device cuda] [--methods vae lidvae ...] [--steps 20] [--threads N]
[--epochs 50] [--n-train 60000]``. Several copies started at once measure how runs sharing one GPU slow
each other down (``python -m identkit table --jobs N`` trains that way).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when present)")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method (after 3 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the projection (default: the table's)")
    parser.add_argument("--n-train", type=int, default=60000, help="training images of the projection")
    parser.add_argument("--lagging-inner", type=int, default=30,
                        help="encoder steps per aggressive outer step assumed for the lagging encoder")
    args = parser.parse_args(argv)

    import torch

    from identkit import table
    from identkit.neural.train import default_device, make_optimizer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    s = table.table_settings(quick=False)
    epochs = args.epochs or s.epochs
    methods = args.methods or list(table.METHODS)
    try:
        from identkit.data import load_fashion_mnist

        x, _ = load_fashion_mnist(n=s.batch_size * 8, seed=0)
        source = "fashion-mnist"
    except FileNotFoundError:
        x = torch.rand(s.batch_size * 8, 784, generator=torch.Generator().manual_seed(0))
        source = "random grey images"
    steps_per_epoch = math.ceil(args.n_train / s.batch_size)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {source}; latent {s.latent_dim}, "
          f"hidden {s.hidden}, batch {s.batch_size}; projection: {steps_per_epoch} steps/epoch x {epochs} epochs")
    print(f"{'method':10s} {'ms/step':>9s} {'x VAE':>6s} {'epoch s':>8s} {'run min':>8s}")
    base = None
    for key in methods:
        model, method = table.build_method(key, s, 784, seed=0, train_x=x)
        model.to(device)
        opt = make_optimizer(model.parameters(), s.optimizer, s.lr)
        method.clip_grad, method.optimizer_name, method.lr = s.clip_grad, s.optimizer, s.lr
        method.batch_size, method.steps_per_epoch = s.batch_size, steps_per_epoch
        run_epochs = epochs + int(getattr(method, "extra_epochs", 0))  # KL thresholding's pretraining
        gen = torch.Generator().manual_seed(0)
        method.begin(model, x, gen)
        if key == "lagging":  # force the inner loop to run --lagging-inner steps (no early stop)
            method.max_inner, method.check_every = args.lagging_inner, args.lagging_inner + 1
        times = []
        for step in range(3 + args.steps):
            xb = torch.bernoulli(x[(step % 8) * s.batch_size:((step % 8) + 1) * s.batch_size], generator=gen)
            sync()
            t0 = time.perf_counter()
            method.train_step(model, opt, xb.to(device), step, gen)
            sync()
            if step >= 3:
                times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        base = t if key == "vae" or base is None else base
        print(f"{key:10s} {1e3 * t:9.2f} {t / base:6.2f} {t * steps_per_epoch:8.1f} "
              f"{t * steps_per_epoch * run_epochs / 60:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
