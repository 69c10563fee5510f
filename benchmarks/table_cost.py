"""What a full Table 1 costs: one training step of every method at a data set's table settings, and the projection.

For each method of the data set (built by :func:`identkit.table.build_method` at its full-mode settings,
with the mode's per-method overrides such as SA-VAE's 5 SVI steps on text, and any ``--set``: Fashion-MNIST
latent 64, hidden 512, batch 100; synthetic text He et al.'s latent 2, LSTM 50, batch 16; fortunes latent 16,
LSTM 128, batch 32, vocabulary 2 000) this times ``Method.train_step`` on real batches
(Fashion-MNIST, He et al.'s synthetic sentences, fortunes; random data when a corpus is not installed) and
prints the median seconds per step, the ratio to the VAE's step, the activation memory of one step (bytes of
the tensors autograd saves for the backward pass, counted once each), and the projected training time of one
(method, seed) run: steps per epoch × epochs. The identifiable text model's cost is its head, a Brenier map over
the V − 3 natural parameters at every token. The lagging encoder is timed in its aggressive phase with
``--lagging-inner`` encoder steps per outer step (an upper bound: the phase ends after a few epochs);
evaluation (AU/KL/MI and the S = 500 importance-weighted LL) is not included.

Usage: ``python benchmarks/table_cost.py [--dataset fashion_mnist|synthetic|fortunes] [--device cuda]
[--methods vae idsvae ...] [--steps 20] [--threads N] [--epochs N] [--n-train N] [--set KEY=VALUE ...]``,
``--set`` as in ``python -m identkit table`` (e.g. ``--set sa_vae.svi_steps=20``: Kim et al.'s SVI steps).
Several copies started at once measure how runs sharing one GPU slow each other down (``python -m identkit table --jobs N`` trains that way).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time


def _batches(dataset: str, s, n_batches: int):
    """``n_batches × batch_size`` training rows of the data set, its input size and a description."""
    import torch

    n = s.batch_size * n_batches
    if dataset == "fashion_mnist":
        try:
            from identkit.data import load_fashion_mnist

            x, _ = load_fashion_mnist(n=n, seed=0)
            return x, 784, "fashion-mnist"
        except FileNotFoundError:
            return torch.rand(n, 784, generator=torch.Generator().manual_seed(0)), 784, "random grey images"
    from identkit import table

    try:
        train_x, _ = table.load_table_data(s)
        return train_x[:n], table.get_dataset(dataset).data_dim(s, train_x), dataset
    except FileNotFoundError:
        raise SystemExit(f"{dataset} is not installed here (`make data`)") from None


def _saved_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd saves while ``fn()`` runs (the activation memory of a step)."""
    import torch

    seen: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in seen:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist, synthetic, fortunes, yahoo, yelp")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when present)")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method (after 3 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the projection (default: the table's)")
    parser.add_argument("--n-train", type=int, default=None, help="training rows of the projection (default: the table's)")
    parser.add_argument("--lagging-inner", type=int, default=30,
                        help="encoder steps per aggressive outer step assumed for the lagging encoder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a settings field or one method's (METHOD.KEY=VALUE), as in the table command")
    args = parser.parse_args(argv)

    import torch

    from identkit import table
    from identkit.neural.train import default_device, make_optimizer
    from identkit.table.cli import parse_overrides

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    spec = table.get_dataset(args.dataset)
    s = table.table_settings(quick=False, dataset=args.dataset, **parse_overrides(args.set, args.dataset))
    epochs = args.epochs or s.epochs
    methods = args.methods or list(spec.methods)
    x, data_dim, source = _batches(args.dataset, s, 8)
    n_train = args.n_train or {"fashion_mnist": 60000, "synthetic": 16000}.get(args.dataset) or len(table.load_table_data(s)[0])
    steps_per_epoch = math.ceil(n_train / s.batch_size)
    text = args.dataset != "fashion_mnist"

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def batch(step, gen):
        xb = x[(step % 8) * s.batch_size:((step % 8) + 1) * s.batch_size]
        return (xb if text else torch.bernoulli(xb, generator=gen)).to(device)

    print(f"dataset {args.dataset} ({source}), device {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; latent {s.latent_dim}, hidden {s.hidden}, batch {s.batch_size}"
          + (f", vocabulary {data_dim}, {float((x[:, 1:] != 0).sum()) / len(x):.1f} tokens per row" if text else "")
          + f"; projection: {steps_per_epoch} steps/epoch x {epochs} epochs")
    print(f"{'method':12s} {'ms/step':>9s} {'x VAE':>6s} {'act. MB':>8s} {'x VAE':>6s} {'epoch s':>8s} {'run min':>8s}")
    base = base_mem = None
    for key in methods:
        model, method = table.build_method(key, s, data_dim, seed=0, train_x=x)
        model.to(device)
        opt = make_optimizer(model.parameters(), s.optimizer, s.lr)
        method.clip_grad, method.optimizer_name, method.lr = s.clip_grad, s.optimizer, s.lr
        method.batch_size, method.steps_per_epoch = s.batch_size, steps_per_epoch
        own = table.method_settings(s, key)  # a method's own budget (method_overrides), e.g. SA-VAE's SVI steps
        run_epochs = (args.epochs or own.epochs) + int(getattr(method, "extra_epochs", 0))  # + KL thresholding's pretraining
        gen = torch.Generator().manual_seed(0)
        method.begin(model, x, gen)
        if key == "lagging":  # force the inner loop to run --lagging-inner steps (no early stop)
            method.max_inner, method.check_every = args.lagging_inner, args.lagging_inner + 1
        times = []
        model.train()
        for step in range(3 + args.steps):
            xb = batch(step, gen)
            sync()
            t0 = time.perf_counter()
            method.train_step(model, opt, xb, step, gen)
            sync()
            if step >= 3:
                times.append(time.perf_counter() - t0)
        mem = _saved_bytes(lambda: method.loss(model, batch(0, gen), 3, gen)[0]) / 2**20
        t = statistics.median(times)
        if key == "vae" or base is None:
            base, base_mem = t, mem
        print(f"{key:12s} {1e3 * t:9.2f} {t / base:6.2f} {mem:8.1f} {mem / base_mem:6.2f} {t * steps_per_epoch:8.1f} "
              f"{t * steps_per_epoch * run_epochs / 60:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
