"""Sizes of the sparse suites; the generators and the objective are fastlr's own.

The generators (:func:`fastlr.sparse_bench.make_ctr`, :func:`~fastlr.sparse_bench.make_text`)
and :func:`~fastlr.sparse_bench.sparse_objective` live in the package so that
``fastlr bench --sparse`` and these suites measure the same problems. The
issue's full sizes (CTR 10M × 2^20, text 200k × 100k) do not fit a 2-core,
24 GB machine together with scikit-learn's copies: the suites use scaled-down
rows (``N_CTR``, ``N_TEXT``) at the full widths and densities.
"""

from fastlr.sparse_bench import D_CTR, D_TEXT, make_ctr, make_text, sparse_objective  # noqa: F401

from .common import pick

N_CTR = pick(500_000, 20_000)
N_TEXT = pick(50_000, 5_000)
