"""``fastlr bench``: the command-line glue of :mod:`fastlr.bench` and :mod:`fastlr.matrix`."""

import sys


def add_parser(sub):
    bench = sub.add_parser(
        "bench", help="time fastlr against the read-bandwidth limit and other libraries",
        description="Generate a problem, time a parallel read of X, loss_grad per backend and "
                    "the fit of every peer library on the same objective; print a table.")
    bench.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    bench.add_argument("--d", type=int, default=64, help="features (default 64)")
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="dtype of X (default float32)")
    bench.add_argument("--classes", type=int, default=2,
                       help="classes: 2 = sigmoid model, 3 or more = softmax (default 2)")
    bench.add_argument("--backends", default="cpu,numpy",
                       help="loss_grad backends, comma-separated (default cpu,numpy)")
    bench.add_argument("--peers", default="all",
                       help="comma-separated peers, or 'all' (every installed one; default). "
                            "fastlr-lbfgs always runs: speed-ups are against it (with --matrix: "
                            "fastlr-auto, the default solver)")
    bench.add_argument("--repeat", type=int, default=3,
                       help="timed runs per measurement, the median is reported (default 3)")
    bench.add_argument("--json", metavar="PATH", help="write all results as JSON")
    bench.add_argument("--plot", metavar="PATH",
                       help="write a PNG: fit time per peer, time vs n (needs matplotlib)")
    bench.add_argument("--matrix", action="store_true",
                       help="instead: every peer on every workload of fastlr.matrix (breast cancer, "
                            "iris, digits, 20k x 20, 1M x 64, ...), a Markdown table; --peers, "
                            "--repeat and --json apply")
    bench.add_argument("--workloads", default=None,
                       help="with --matrix: comma-separated workloads, 'all', or the default "
                            "(the ones that run in minutes on 2 cores)")
    bench.add_argument("--sparse", action="store_true",
                       help="instead: sparse CSR problems (CTR-like, text-like; fastlr.sparse_bench) "
                            "against scikit-learn lbfgs/saga/liblinear, glum, SGDClassifier and "
                            "Vowpal Wabbit; --peers, --repeat and --json apply")
    bench.add_argument("--problems", default="ctr,text,text-20",
                       help="with --sparse: comma-separated problems (default ctr,text,text-20)")
    bench.add_argument("--n-ctr", type=int, default=None,
                       help="with --sparse: rows of the CTR-like problem (default 1,000,000)")
    bench.add_argument("--n-text", type=int, default=None,
                       help="with --sparse: rows of the text-like problems (default 100,000)")
    bench.add_argument("--busy", action="store_true",
                       help="with --matrix: keep one core busy with another process meanwhile")


def run(args, file=sys.stdout):
    """``fastlr bench``: check the arguments and outputs first, then measure, print, save."""
    from .. import bench

    if args.json:
        bench.check_writable(args.json, "--json")
    if args.plot:
        bench.check_writable(args.plot, "--plot")
        bench.require_matplotlib()
    progress = None
    if sys.stderr.isatty():
        def progress(message):
            print(f"fastlr bench: {message} ...", file=sys.stderr, flush=True)
    if args.matrix:
        return _run_matrix(args, progress, file)
    if args.sparse:
        return _run_sparse(args, progress, file)
    result = bench.run_bench(n=args.n, d=args.d, dtype=args.dtype, classes=args.classes,
                             backends=args.backends, peers=args.peers, repeat=args.repeat,
                             scaling=bool(args.plot), progress=progress)
    print(bench.format_table(result), file=file)
    if args.json:
        bench.write_json(result, args.json)
        print(f"results written to {args.json}", file=file)
    if args.plot:
        bench.write_plot(result, args.plot)
        print(f"plot written to {args.plot}", file=file)


def _run_matrix(args, progress, file):
    from .. import bench, matrix

    if args.workloads in (None, ""):
        workloads = matrix.SMALL_WORKLOADS
    elif args.workloads == "all":
        workloads = tuple(matrix.WORKLOADS)
    else:
        workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    # the reference of the ratios (fastlr's default solver) always runs, first
    reference = matrix.MATRIX_PEERS[0]
    peers = matrix.MATRIX_PEERS if args.peers == "all" else tuple(
        [reference] + [p.strip() for p in args.peers.split(",")
                       if p.strip() and p.strip() != reference])
    result = matrix.run_matrix(workloads, peers, repeat=args.repeat, busy=args.busy, log=progress)
    print(matrix.format_matrix(result), file=file)
    if args.json:
        bench.write_json(result, args.json)
        print(f"results written to {args.json}", file=file)


def _run_sparse(args, progress, file):
    from .. import bench, sparse_bench

    problems = tuple(p.strip() for p in args.problems.split(",") if p.strip())
    peers = (sparse_bench.FIT_PEERS + sparse_bench.EPOCH_PEERS if args.peers == "all"
             else tuple(p.strip() for p in args.peers.split(",") if p.strip()))
    for option, value in (("--n-ctr", args.n_ctr), ("--n-text", args.n_text)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be a positive number of rows, got {value}")
    result = sparse_bench.run_sparse_bench(
        problems, n_ctr=args.n_ctr or sparse_bench.N_CTR, n_text=args.n_text or sparse_bench.N_TEXT,
        peers=peers, repeat=args.repeat, progress=progress)
    print(sparse_bench.format_sparse_table(result), file=file)
    if args.json:
        bench.write_json(result, args.json)
        print(f"results written to {args.json}", file=file)

