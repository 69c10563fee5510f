"""Benchmark: the exact PPCA posterior for n = 100 000 points (D = 5, K = 2).

Prints the vectorised time and two ratios:
* against a per-point loop (a fresh Cholesky solve per x_i, as a naive implementation would do), timed on a
  subset and extrapolated to n;
* against one plain numpy pass ``x @ W`` (the lower bound: the posterior mean is one (n, D) × (D, K) product).

BLAS is limited to one thread by default (``--blas-threads``): for (n, 5) × (5, 2) products a multi-threaded
OpenBLAS only adds synchronisation, and on a loaded 2-core machine its spinning threads made ``x @ W`` 200× slower
(60 ms instead of 0.3 ms) in our measurements. The variables are set before numpy is imported.

Usage: ``python benchmarks/ppca_posterior.py [--n 100000] [--subset 2000] [--repeat 7] [--blas-threads 1]``.
"""
from __future__ import annotations

import argparse
import os
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--subset", type=int, default=2_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (0: leave the environment alone)")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.blas_threads > 0:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.blas_threads)

import numpy as np  # noqa: E402
from scipy import linalg  # noqa: E402

from identkit.classical.ppca import PPCA, reference_W  # noqa: E402


def best_of(f, repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls of f (seconds), after one untimed warm-up call."""
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_point(W: np.ndarray, sigma: float, x: np.ndarray) -> np.ndarray:
    """The naive loop: for each x_i solve M μ_i = Wᵀx_i by Cholesky (and form σ²M⁻¹) from scratch."""
    out = np.empty((len(x), W.shape[1]))
    for i, xi in enumerate(x):
        M = W.T @ W + sigma**2 * np.eye(W.shape[1])
        cho = linalg.cho_factor(M, lower=True)
        out[i] = linalg.cho_solve(cho, W.T @ xi)
        linalg.cho_solve(cho, sigma**2 * np.eye(W.shape[1]))
    return out


def main(args: argparse.Namespace = ARGS) -> None:

    W, sigma = reference_W("full_rank"), 1.0
    model = PPCA(W, sigma)
    x, _ = model.sample(args.n, seed=0)

    t_vec = best_of(lambda: model.posterior(x), args.repeat)
    t_vec_total = best_of(lambda: PPCA(W, sigma).posterior(x), args.repeat)  # including the factorisation
    t_matmul = best_of(lambda: x @ W, args.repeat)
    t_loop_subset = best_of(lambda: per_point(W, sigma, x[: args.subset]), max(1, args.repeat // 3))
    t_loop = t_loop_subset * args.n / args.subset

    # the three agree (the loop on its subset)
    np.testing.assert_allclose(per_point(W, sigma, x[:50]), model.posterior(x[:50])[0], rtol=1e-10, atol=1e-12)

    threads = args.blas_threads if args.blas_threads > 0 else "default"
    print(f"PPCA posterior, n={args.n}, D={model.D}, K={model.K} (best of {args.repeat}, BLAS threads: {threads})")
    print(f"  vectorised posterior(x)              : {t_vec * 1e3:9.2f} ms")
    print(f"  vectorised, incl. building PPCA       : {t_vec_total * 1e3:9.2f} ms")
    print(f"  one numpy pass x @ W (lower bound)    : {t_matmul * 1e3:9.2f} ms")
    print(f"  per-point loop (extrapolated from {args.subset}): {t_loop * 1e3:9.1f} ms")
    print(f"  ratio vectorised / x@W                : {t_vec / t_matmul:9.2f}")
    print(f"  ratio per-point loop / vectorised     : {t_loop / t_vec:9.0f}")


if __name__ == "__main__":
    main()
