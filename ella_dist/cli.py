"""The ``ella-dist`` command: one entry point, sub-commands imported lazily.

Lazy imports keep ``ella-dist --help`` fast and keep Ray/gRPC out of commands that
do not need them.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
BENCHMARKS = {
    "paper": "paper.py",
}


def _bench(args: argparse.Namespace) -> int:
    script = BENCH_DIR / BENCHMARKS[args.name]
    if not script.is_file():
        print(f"error: benchmark script {script} not found (benchmarks run from a source checkout).", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ella-dist",
        description="ELLA lifelong learning as a service: run benchmarks, serve models, submit tasks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("bench", help="run a benchmark from bench/ (e.g. 'ella-dist bench paper --quick')")
    p.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark (try --help)")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
