"""The ``ella-dist`` command: one entry point, sub-commands imported lazily.

Lazy imports keep ``ella-dist --help`` fast and keep Ray/gRPC out of commands that
do not need them (``submit``, ``predict`` and ``status`` only load the client).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
BENCHMARKS = {
    "paper": "paper.py",
    "scaling": "scaling.py",
    "cluster": "cluster_throughput.py",
    "service": "service_load.py",
}
DEFAULT_TARGET = "127.0.0.1:50051"
# Land-mine hyper-parameters of the demo (chosen on a 50/50 split, see docs/service.md).
DEMO_PARAMS = dict(loss="logistic", k=2, mu=1e-4, lam=1e-3, ridge=1e-1, random_state=0)

EPILOG = """\
examples:
  ella-dist demo                                  # the whole story on an embedded local Ray
  ella-dist serve --port 50051 --checkpoint-dir ./ckpt
  ella-dist submit mines landmine.mat --create --loss logistic --k 2
  ella-dist predict mines mine-0 rows.csv --output proba
  ella-dist status
  ella-dist bench service --quick
"""


# -- bench / serve ---------------------------------------------------------------------------
def _bench(args: argparse.Namespace) -> int:
    script = BENCH_DIR / BENCHMARKS[args.name]
    if not script.is_file():
        print(f"error: benchmark script {script} not found (benchmarks run from a source checkout).", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ella_server.app import run

    return run(args)


# -- client-side commands --------------------------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from ella_client import Client

    token = Path(args.token_file).read_text().strip() if args.token_file else None
    ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
    return Client(args.target, token=token, timeout=args.timeout, root_certificates=ca)


def load_tasks(path: str) -> list[tuple[str, Any, Any]]:
    """Tasks ``(task_id, X, y)`` from a file.

    - ``.mat``: cell arrays ``feature``/``label`` (land mine) or ``X``/``Y`` (MALSAR), one
      cell per task; tasks are named ``<stem>-<i>``.
    - ``.npz``: arrays ``X`` (n, d), ``y`` (n,) and ``task`` (n,) of per-row task ids, or
      pairs ``X_<task>`` / ``y_<task>``.
    - ``.csv``: a header row; a column ``task`` (task id), a column ``y`` (target), every
      other column a feature.
    """
    import numpy as np

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".mat":
        from scipy.io import loadmat

        m = loadmat(p)
        for xk, yk in (("feature", "label"), ("X", "Y"), ("X", "y")):
            if xk in m and yk in m:
                xs, ys = m[xk].ravel(), m[yk].ravel()
                return [(f"{p.stem}-{i}", np.asarray(X, float), np.asarray(y, float).ravel())
                        for i, (X, y) in enumerate(zip(xs, ys))]
        raise ValueError(f"{p}: expected cell arrays 'feature'/'label' or 'X'/'Y'; found {sorted(k for k in m if not k.startswith('__'))}.")
    if suffix == ".npz":
        z = np.load(p, allow_pickle=False)
        if {"X", "y", "task"} <= set(z.files):
            return _group(z["task"].astype(str), z["X"], z["y"])
        names = sorted(k[2:] for k in z.files if k.startswith("X_") and f"y_{k[2:]}" in z.files)
        if not names:
            raise ValueError(f"{p}: expected arrays X, y, task or pairs X_<task>, y_<task>; found {z.files}.")
        return [(n, z[f"X_{n}"], z[f"y_{n}"]) for n in names]
    if suffix == ".csv":
        import csv

        with open(p, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        if "task" not in header or "y" not in header:
            raise ValueError(f"{p}: the header needs columns 'task' and 'y'; got {header}.")
        ti, yi = header.index("task"), header.index("y")
        feats = [i for i in range(len(header)) if i not in (ti, yi)]
        X = np.array([[float(r[i]) for i in feats] for r in body])
        y = np.array([float(r[yi]) for r in body])
        return _group(np.array([r[ti] for r in body]), X, y)
    raise ValueError(f"{p}: unsupported file type {suffix!r}; use .mat, .npz or .csv.")


def _group(task: Any, X: Any, y: Any) -> list[tuple[str, Any, Any]]:
    order: dict[str, list[int]] = {}
    for i, t in enumerate(task):
        order.setdefault(str(t), []).append(i)
    return [(t, X[idx], y[idx]) for t, idx in order.items()]


def _load_rows(path: str) -> Any:
    import numpy as np

    p = Path(path)
    if p.suffix.lower() == ".npy":
        return np.load(p)
    return np.loadtxt(p, delimiter=",", ndmin=2, skiprows=1 if not _numeric_first_line(p) else 0)


def _numeric_first_line(p: Path) -> bool:
    first = p.read_text().splitlines()[0]
    try:
        [float(v) for v in first.split(",")]
        return True
    except ValueError:
        return False


def _submit(args: argparse.Namespace) -> int:
    from ella_client import AlreadyExists
    from tqdm import tqdm

    tasks = load_tasks(args.file)
    params = {k: getattr(args, k) for k in ("loss", "k", "mu", "lam", "ridge") if getattr(args, k) is not None}
    with _client(args) as c:
        if args.create:
            try:
                c.create_model(args.model, **params)
            except AlreadyExists:
                print(f"model {args.model!r} exists; training it as it is", file=sys.stderr)
        bar = tqdm(tasks, desc=f"submit {Path(args.file).name}", unit="task", disable=args.quiet)
        if args.per_task:
            acks = [c.train(args.model, *t) for t in bar]
        else:
            acks = c.train_stream(args.model, bar)
    last = acks[-1]
    print(f"applied {len(acks)} task(s) to {args.model!r}: model version {last.version}, T = {last.n_tasks}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    X = _load_rows(args.file)
    with _client(args) as c:
        if args.output == "labels":
            out = c.predict(args.model, args.task_id, X)
        elif args.output == "proba":
            out = c.predict_proba(args.model, args.task_id, X)[:, 1]
        else:
            out = c.decision_function(args.model, args.task_id, X)
    if args.out:
        np.savetxt(args.out, out, delimiter=",")
    else:
        for v in out:
            print(f"{v:.10g}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        st = c.status()
        models = c.list_models()
    if args.json:
        print(json.dumps({"models": models, "nodes": st}, indent=2, sort_keys=True))
        return 0
    print(f"models: {', '.join(models) or '(none)'}")
    for node in sorted(st):
        print(f"[{node}]")
        for k in sorted(st[node]):
            print(f"  {k:32s} {st[node][k]}")
    return 0


# -- demo ------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from ella_dist.demo import run_demo

    return run_demo(synthetic=args.synthetic, num_learners=args.num_learners, seed=args.seed, quiet=args.quiet)


def _client_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--target", default=DEFAULT_TARGET, help=f"server host:port (default: {DEFAULT_TARGET})")
    g.add_argument("--token-file", default=None, help="file holding the server's bearer token")
    g.add_argument("--tls-ca", default=None, help="PEM CA certificate: connect with TLS and trust it")
    g.add_argument("--timeout", type=float, default=60.0, help="deadline of each call in seconds (default: 60)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ella-dist",
        description="ELLA lifelong learning as a service: serve models over gRPC on Ray, stream tasks in, "
        "predict, inspect, and run the demo and benchmarks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="start a server on an embedded Ray, stream the land-mine tasks, compare with STL",
                       description="The main job end to end: an embedded local Ray and gRPC server, the 29 land-mine "
                       "tasks (synthetic tasks if the data set is absent) streamed through the client one by one "
                       "with a 50/50 train/test split per task, test AUC printed as each task arrives, and a final "
                       "table of ELLA (served) vs. single-task learning (STL, computed locally).")
    p.add_argument("--synthetic", action="store_true", help="use synthetic binary tasks even if the data set exists")
    p.add_argument("--num-learners", type=int, default=2, help="learner actors (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default: 0)")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    p.set_defaults(func=_demo)

    from ella_server.options import add_arguments

    p = sub.add_parser("serve", help="run the gRPC server (embedded Ray, or join a cluster with --ray-address)",
                       description="Serve ELLA models over gRPC (service ella.v1.Ella, plus grpc.health.v1 and "
                       "reflection). Binds 127.0.0.1 unless --host says otherwise. SIGTERM drains in-flight calls, "
                       "writes a final checkpoint and exits; restarting with the same --checkpoint-dir serves the "
                       "same models.")
    add_arguments(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser("submit", help="train a model on the tasks of a .mat / .npz / .csv file",
                       description="Stream every task of FILE to MODEL in one Train call (all or nothing), with a "
                       "progress bar. " + (load_tasks.__doc__ or "").split("\n\n", 1)[1].replace("\n    ", "\n"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model name")
    p.add_argument("file", help="tasks: .mat, .npz or .csv")
    p.add_argument("--create", action="store_true", help="create the model first (with the options below)")
    p.add_argument("--loss", choices=["squared", "logistic"], default=None)
    p.add_argument("--k", type=int, default=None, help="basis components")
    p.add_argument("--mu", type=float, default=None, help="l1 weight on the codes")
    p.add_argument("--lam", type=float, default=None, help="Frobenius penalty on L")
    p.add_argument("--ridge", type=float, default=None, help="ridge of the single-task learner")
    p.add_argument("--per-task", action="store_true", help="one Train call per task (each acknowledged on its own)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _client_args(p)
    p.set_defaults(func=_submit)

    p = sub.add_parser("predict", help="predict rows of a .csv / .npy file with one task's model",
                       description="Print one value per row of FILE (.npy, or .csv of features with an optional "
                       "header), from MODEL's model of TASK_ID.")
    p.add_argument("model")
    p.add_argument("task_id")
    p.add_argument("file", help="rows to score: .csv or .npy, shape (n_rows, n_features)")
    p.add_argument("--output", choices=["scores", "labels", "proba"], default="scores",
                   help="decision function (default), labels, or P(y=1)")
    p.add_argument("--out", default=None, help="write a .csv instead of printing")
    _client_args(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("status", help="models and per-node/actor status of a server",
                       description="Print the server's models and its per-node/actor status maps (Jubatus get_status).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _client_args(p)
    p.set_defaults(func=_status)

    p = sub.add_parser("bench", help="run a benchmark from bench/ (e.g. 'ella-dist bench service --quick')")
    p.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark (try --help)")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError) as exc:  # files, client-side checks and server errors (EllaError subclasses)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
