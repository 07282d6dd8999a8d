"""Peak memory that ``fit`` adds on the generated sparse problems, against the CSR's own bytes.

Runs each (problem, solver) in a fresh process: generates the data
(:mod:`fastlr.sparse_bench`), compiles the kernels on a 2,000-row slice,
resets the process's peak RSS (Linux ``/proc/self/clear_refs``), fits, and
reports ``VmHWM − VmRSS before the fit`` against ``data + indices + indptr``
bytes. Linux only. Example::

    python benchmarks/sparse_fit_memory.py --cases ctr:sgd,ctr:lbfgs,text:sgd,text-20:lbfgs
"""

import argparse
import subprocess
import sys

CHILD = r"""
import gc, sys, warnings
import fastlr
from fastlr.sparse_bench import make_sparse_problem
problem, solver, n_ctr, n_text = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
X, y = make_sparse_problem(problem, n_ctr=n_ctr, n_text=n_text)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fastlr.LogisticRegression(solver=solver, max_iter=2).fit(X[:2000], y[:2000])
gc.collect()
def status(key):
    with open("/proc/self/status") as f:
        return [int(line.split()[1]) for line in f if line.startswith(key)][0]
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fastlr.LogisticRegression(solver=solver, tol=1e-6, max_iter=100).fit(X, y)
added = (status("VmHWM:") - before) * 1024
csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
print(f"{problem:8s} {solver:6s} fit added {added / 2**20:8.1f} MiB; CSR {csr / 2**20:7.1f} MiB; ratio {added / csr:5.2f}")
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="ctr:sgd,ctr:lbfgs,text:sgd,text:lbfgs,text-20:lbfgs",
                        help="comma-separated problem:solver pairs")
    parser.add_argument("--n-ctr", type=int, default=200_000)
    parser.add_argument("--n-text", type=int, default=50_000)
    args = parser.parse_args(argv)
    for case in args.cases.split(","):
        problem, solver = case.split(":")
        subprocess.run([sys.executable, "-c", CHILD, problem, solver, str(args.n_ctr), str(args.n_text)],
                       check=True)


if __name__ == "__main__":
    main()
