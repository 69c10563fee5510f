"""Command line: ``python -m identkit figures [--only NAME ...] [--quick] [--list]``;
``python -m identkit table [--dataset NAME] [--quick] [--seeds N] [--outdir DIR]``;
``python -m identkit ablation [--quick] [--jobs N]``."""
from __future__ import annotations

import argparse
import sys

def _figures(args: argparse.Namespace) -> int:
    from . import figures

    if args.list:
        for spec in figures.registry().values():
            print(f"{spec.name:32s} {spec.notebook:24s} {spec.description}")
        return 0
    quick = True if args.quick else (False if args.full else None)
    paths = figures.save_all(only=args.only, quick=quick, outdir=args.outdir)
    print(f"wrote {len(paths)} files to {paths[0].parent if paths else args.outdir}")
    return 0

def _table(args: argparse.Namespace) -> int:
    from . import table

    return table.main(args)

def _ablation(args: argparse.Namespace) -> int:
    from . import ablation

    return ablation.main(args)

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m identkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="regenerate figures (PNG + PDF)")
    fig.add_argument("--only", nargs="+", metavar="NAME", help="figure names (default: all)")
    mode = fig.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick (CI) mode")
    mode.add_argument("--full", action="store_true", help="full mode even when CI/IDENTKIT_QUICK is set")
    fig.add_argument("--outdir", default=None, help="output folder (default: figures/)")
    fig.add_argument("--list", action="store_true", help="list figure names and exit")
    fig.set_defaults(func=_figures)
    from .table import add_arguments  # light: the table package imports torch only when it runs

    tab = sub.add_parser("table", help="train every method on one data set (Fashion-MNIST, synthetic text, fortunes, "
                                           "Yahoo, Yelp) and write its Table 1 (CSV + markdown)")
    add_arguments(tab).set_defaults(func=_table)
    from .ablation import add_arguments as ablation_arguments

    abl = sub.add_parser("ablation", help="the injective decoder's ablation (results/injective_ablation.csv)")
    ablation_arguments(abl).set_defaults(func=_ablation)
    return parser

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)

if __name__ == "__main__":
    sys.exit(main())
