"""Command line: ``fastlr demo``, ``bench``, ``train``, ``predict`` and ``info``.

One module per command (:mod:`.demo`, :mod:`.bench`, :mod:`.train`,
:mod:`.predict`, :mod:`.info`), each with ``add_parser(sub)`` and
``run(args, file)``; what they share is in :mod:`._common`. This module
assembles the parser and dispatches. User errors print one line to stderr
and exit with status 2; Ctrl-C during ``train`` exits with 130.
"""

import sys

from . import bench, demo, info, predict, train
from ._common import EXIT_INTERRUPTED, EXIT_USAGE, Interrupted, OneLineParser

#: What ``fastlr --help`` says above the commands (plain text: argparse prints it as it is).
DESCRIPTION = ("Train logistic regression on the CPU (Numba) or a GPU (numba-cuda): "
               "fastlr demo, bench, train, predict and info.")

#: The subcommands, in the order ``fastlr --help`` lists them.
COMMANDS = {"demo": demo, "bench": bench, "train": train, "predict": predict, "info": info}

# The functions the commands were known by before the split (tests, scripts).
run_demo, run_demo_command = demo.run_demo, demo.run_demo_command
run_bench_command = bench.run
run_train, run_predict, run_info = train.run_train, predict.run, info.run


def build_parser():
    """The ``fastlr`` argument parser with every subcommand."""
    parser = OneLineParser(prog="fastlr", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    parser.subcommands = sub.choices  # {name: its parser}
    return parser


def _parse(parser, argv):
    """``parser.parse_args(argv)``, but an unknown option is reported by its subcommand
    (``fastlr train: error: unrecognized arguments: ...``, as every other error of it)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv=None):
    """Entry point of the ``fastlr`` command; returns the exit status."""
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        if args.command == "demo":
            if args.n < 0:
                raise ValueError(f"--n must be >= 0, got {args.n}")
            demo.run_demo_command(args)
        elif args.command == "bench":
            try:
                bench.run(args)
            except (ValueError, TypeError, OSError, ImportError) as exc:
                print(f"fastlr bench: error: {exc}", file=sys.stderr)
                return EXIT_USAGE
        else:
            try:
                if args.command == "train":
                    train.run_train(args)
                elif args.command == "predict":
                    predict.run(args)
                else:
                    info.run(args)
            except Interrupted:
                return EXIT_INTERRUPTED
            except (ValueError, TypeError, OSError) as exc:
                message = " ".join(str(exc).split()) or type(exc).__name__
                print(f"fastlr {args.command}: error: {message}", file=sys.stderr)
                return EXIT_USAGE
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastlr {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
