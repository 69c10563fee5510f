"""Training-step cost of the injective decoder relative to the MLP decoder it replaces (prints ratios).

One step = forward, Bernoulli loss, backward (gradients of gradients through both Brenier maps), RMSprop update,
batch 100, K = 64, D = 784, hidden = 512 (ICNN width 256, the default). Also reports the wide variant
(``icnn_hidden = 512``) and a same-width encoder so the ratio of a whole VAE step can be estimated.
Usage: ``python benchmarks/injective_decoder_step.py [--steps N]``.
"""
from __future__ import annotations

import argparse
import time

import torch

from identkit.neural import InjectiveDecoder, MLPDecoder, bernoulli_log_prob


def step_time(module, inputs, target, steps: int) -> float:
    opt = torch.optim.RMSprop(module.parameters(), lr=1e-3)

    def one():
        out = module(inputs)
        loss = -bernoulli_log_prob(target, out[..., : target.shape[-1]]).mean() if out.shape[-1] == target.shape[-1] \
            else out.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    k, d, h, b = 64, 784, 512, 100
    z = torch.randn(b, k)
    x = (torch.rand(b, d) < 0.3).float()
    enc = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, h), torch.nn.ReLU(),
                              torch.nn.Linear(h, 2 * k))
    t_enc = step_time(enc, x, x, args.steps)
    t_mlp = step_time(MLPDecoder(k, d, h), z, x, args.steps)
    t_inj = step_time(InjectiveDecoder(k, d, h), z, x, args.steps)
    t_wide = step_time(InjectiveDecoder(k, d, h, icnn_hidden=h), z, x, args.steps)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"decoder step ratio InjectiveDecoder / MLPDecoder (ICNN width {h // 2}): {t_inj / t_mlp:.2f}")
    print(f"decoder step ratio InjectiveDecoder(icnn_hidden={h}) / MLPDecoder: {t_wide / t_mlp:.2f}")
    print(f"estimated (encoder + decoder) step ratio LIDVAE / VAE: {(t_enc + t_inj) / (t_enc + t_mlp):.2f} "
          f"(wide: {(t_enc + t_wide) / (t_enc + t_mlp):.2f})")


if __name__ == "__main__":
    main()
