"""Exact posterior vs NUTS vs ADVI on the posterior of α (Beta-mixture GMM, n = 10 000): time, and NUTS time per
1 000 effective samples.

The exact posterior is identkit's grid posterior (``BetaMixtureGMM.posterior``, 2 001 points) and its
Gauss-Jacobi quadrature (``posterior_quadrature``); NUTS is NumPyro's (4 vectorised chains, 1 000 warm-up +
1 000 draws), timed twice: cold (JAX compiles) and warm (the same program again); ADVI is mean-field on logit α.
Each line prints the seconds and the ratio to the exact grid posterior. Needs the approx extra
(``pip install -e '.[approx]'``).

    python benchmarks/approximate_inference.py [--n 10000] [--data overlapping] [--chains 4]
"""
from __future__ import annotations

import argparse
import statistics
import time


def _best(f, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--data", default="overlapping", choices=["one_cluster", "overlapping", "separated"])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    args = p.parse_args(argv)

    import jax
    import numpy as np

    from identkit import approximate as A
    from identkit.classical.gmm import paper_datasets

    d = paper_datasets(args.n)[args.data]
    m = d.model
    kw = dict(mu=m.mu, sigma=m.sigma, prior=m.prior)
    t_grid, post = _best(lambda: m.posterior(d.x))
    t_quad, quad = _best(lambda: m.posterior_quadrature(d.x))
    cold = A.nuts(A.gmm_model, d.x, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=0, **kw)
    warm = A.nuts(A.gmm_model, d.x, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=1, **kw)
    q = A.advi(A.gmm_model, d.x, guide="mean-field", steps=3000, lr=0.02, seed=0, **kw)
    ess = float(warm.ess["alpha"])
    print(f"data {args.data}, n = {args.n}; jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{args.chains} chains x ({args.warmup} warm-up + {args.draws} draws)")
    print(f"{'method':34s} {'seconds':>9s} {'x grid':>9s} {'mean':>8s} {'sd':>8s}")
    rows = [("exact: grid posterior (2001 points)", t_grid, post.mean(), post.sd()),
            ("exact: Gauss-Jacobi quadrature", t_quad, quad.mean, quad.sd),
            ("NUTS, cold (compiles)", cold.seconds, float(cold.mean("alpha")), float(cold.sd("alpha"))),
            ("NUTS, warm", warm.seconds, float(warm.mean("alpha")), float(warm.sd("alpha"))),
            (f"NUTS, warm, per 1000 ESS (ESS {ess:.0f})", 1000 * warm.seconds / ess, float("nan"), float("nan")),
            ("ADVI mean-field (3000 steps)", q.seconds, float(q.mean("alpha")), float(q.sd("alpha")))]
    for name, t, mean, sd in rows:
        print(f"{name:34s} {t:9.3f} {t / t_grid:9.1f} {mean:8.4f} {sd:8.4f}")
    print(f"R-hat {float(warm.r_hat['alpha']):.4f}, divergences {warm.info['divergences']}; "
          f"|NUTS mean - exact| = {abs(float(warm.mean('alpha')) - post.mean()):.2e} "
          f"(Monte-Carlo sd {post.sd() / np.sqrt(ess):.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
