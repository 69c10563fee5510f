"""The paper's Table 1, recomputed, for every data set: train each method with one budget, then AU/KL/MI/LL.

``python -m identkit table --dataset fashion_mnist|synthetic|fortunes|yahoo|yelp [--quick|--full] ...`` trains
each method of the data set for 3 seeds (1 in quick mode), evaluates on held-out rows and writes
``figures/table1_<dataset>.{csv,md}`` beside the paper's reported row. One (method, seed) can be run on its own
(``--methods KEY --seed-index I``: a scheduler's array job) and the table assembled from the records with
``--from-cache``.

The package is split by responsibility; a data set is one small, separate thing to add:

* :mod:`~identkit.table.datasets`: the :class:`TableDataset` registry (what a data set provides);
* :mod:`~identkit.table.fashion_mnist`: the image data set, its settings, methods and paper row;
* :mod:`~identkit.table.text`: synthetic text, fortunes, Yahoo, Yelp with the LSTM-VAE baselines and the IDSVAE;
* :mod:`~identkit.table.runs`: training and evaluating (method, seed) runs, records, resuming, re-evaluation;
* :mod:`~identkit.table.render`: mean ± sd rows, the CSV/markdown files and a plain reading of a table;
* :mod:`~identkit.table.cli`: the command line.

The names below are the Fashion-MNIST ones where a data set is implied (``METHODS``, ``CSV_NAME``, ...), as
before the text data sets existed.
"""
from __future__ import annotations

from .cli import add_arguments, main, parse_overrides
from .datasets import (DATASETS, METHOD_FIELDS, TableDataset, dataset_of, get_dataset, method_overrides,
                       method_settings, register, settings_json)
from .fashion_mnist import (DERIVED_ROWS, FASHION_MNIST, FULL_EPOCHS, IDENTIFIABLE_TWINS, INJECTIVE_LAMBDA_ROWS,
                            METHODS, PAPER_FASHION_MNIST, PAPER_LABELS, RESULTS_DIR, TableSettings)
from .render import (BASE_METRICS, GOAL_AU, GOAL_LL_GAP, PAPER_METRICS, commentary, read_table,
                     render_markdown)
from .runs import (CACHE_DIR, add_fixed_latent_ll, build_method, cache_folder, evaluate_run, evaluation_seed,
                   load_table_data, load_validation_data, reevaluate, run_table, settings_from_json, table_settings,
                   train_and_evaluate)
from .text import PAPER_SYNTHETIC, PAPER_YAHOO, TEXT_METHODS, TextTableSettings

#: The Fashion-MNIST table's metric columns and files (see :attr:`TableDataset.csv_columns` for any data set).
METRICS = FASHION_MNIST.metrics
CSV_COLUMNS = FASHION_MNIST.csv_columns
CSV_NAME = FASHION_MNIST.csv_name
MD_NAME = FASHION_MNIST.md_name

__all__ = [
    "DATASETS", "TableDataset", "get_dataset", "dataset_of", "register", "METHOD_FIELDS", "method_overrides",
    "method_settings", "settings_json",
    "TableSettings", "TextTableSettings", "table_settings", "settings_from_json",
    "METHODS", "TEXT_METHODS", "INJECTIVE_LAMBDA_ROWS", "IDENTIFIABLE_TWINS", "DERIVED_ROWS",
    "PAPER_FASHION_MNIST", "PAPER_SYNTHETIC", "PAPER_YAHOO", "PAPER_LABELS", "PAPER_METRICS", "BASE_METRICS",
    "METRICS", "CSV_COLUMNS", "CSV_NAME", "MD_NAME", "FULL_EPOCHS", "CACHE_DIR", "RESULTS_DIR", "GOAL_AU",
    "GOAL_LL_GAP", "build_method", "load_table_data", "load_validation_data", "cache_folder", "evaluation_seed",
    "evaluate_run", "train_and_evaluate", "reevaluate", "add_fixed_latent_ll", "run_table", "read_table",
    "render_markdown", "commentary", "add_arguments", "parse_overrides", "main",
]
