"""Service load: tasks/s and predict latency through gRPC, next to the engine and the core.

One run, one machine: an embedded local Ray engine (2 learners, checkpoints on), the gRPC
server in-process on loopback, and the client library.

- Training: land-mine-sized tasks (the 29 land-mine tasks, halves of them, cycled under
  fresh task ids; synthetic 9-feature binary tasks if the data set is absent) through
  (a) the in-process core ``ELLA.partial_fit``, (b) ``Engine.submit`` one at a time and
  ``Engine.submit_many`` (pipelined), (c) gRPC ``Client.train`` one task per call and
  ``Client.train_stream`` (all tasks in one stream).
- Predict latency p50/p99 for 1, 8 and 64-row batches with 1 and 8 concurrent clients
  (threads, one channel each): through gRPC, through the engine directly (its snapshot
  cache on, the default ``snapshot_max_age=0.2``, and off: every prediction one actor
  call), and the core.

Writes bench/results/service_load.{json,md,png}. ``--quick`` for a short run.
Targets (issue 4): gRPC tasks/s >= 50% of the engine's; predict p99 < 5 ms for 64 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PARAMS = dict(loss="logistic", k=2, mu=1e-4, lam=1e-3, ridge=1e-1, random_state=0)


def base_tasks() -> tuple[str, list]:
    from ella_dist.datasets import load_landmine, make_synthetic

    try:
        tasks = [(t.task_id, t.X[: len(t.y) // 2], t.y[: len(t.y) // 2]) for t in load_landmine()]
        return "land mine (halves: ~250 rows x 9 features per task)", tasks
    except FileNotFoundError:
        syn = make_synthetic(n_tasks=29, n_per_task=250, d=9, random_state=0)
        return "synthetic (250 rows x 9 features per task)", [(t.task_id, t.X, (t.y > np.median(t.y)).astype(float)) for t in syn]


def stream_of(tasks: list, n: int, prefix: str) -> list:
    return [(f"{prefix}-{i}", *tasks[i % len(tasks)][1:]) for i in range(n)]


def rate(fn, n: int) -> dict:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return {"tasks": n, "seconds": dt, "tasks_per_s": n / dt}


def latencies(call, n_calls: int, n_threads: int) -> dict:
    """p50/p99 (ms) of ``call(thread_index)`` made n_calls times by each of n_threads threads."""
    out: list[list[float]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(n_calls):
            t0 = time.perf_counter()
            call(i)
            out[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array([x for xs in out for x in xs]) * 1e3
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "calls": int(lat.size), "calls_per_s": float(lat.size / wall)}


_REMOTE_CLIENT = """
import json, sys, time
import numpy as np
from ella_client import Client
target, model, tid, n_calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X = np.asarray(json.loads(sys.stdin.read()), dtype=np.float64)
with Client(target, timeout=60) as c:
    for _ in range(20):
        c.decision_function(model, tid, X)
    lat = []
    for _ in range(n_calls):
        t0 = time.perf_counter()
        c.decision_function(model, tid, X)
        lat.append(time.perf_counter() - t0)
print(json.dumps(lat))
"""


def latencies_other_process(target: str, model: str, tid: str, X: np.ndarray, n_calls: int) -> dict:
    """p50/p99 (ms) of one client in a separate Python process (the deployed shape: the
    client does not share this process's GIL with the server and the engine driver)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "client"), str(HERE.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _REMOTE_CLIENT, target, model, tid, str(n_calls)],
                         input=json.dumps(X.tolist()), capture_output=True, text=True, env=env, check=True, timeout=600)
    wall = time.perf_counter() - t0
    lat = np.array(json.loads(out.stdout.strip().splitlines()[-1])) * 1e3
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "calls": int(lat.size), "calls_per_s": float(lat.size / wall)}


def machine() -> dict:
    import grpc
    import ray

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "ray": ray.__version__, "grpcio": grpc.__version__,
            "numpy": np.__version__, "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer tasks and calls (about a minute)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default: bench/results)")
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    from ella_client import Client
    from ella_server.embedded import EmbeddedServer
    from tqdm import tqdm

    from ella_dist import ELLA
    from ella_dist.cluster import Engine

    n_tasks = 60 if args.quick else 200
    n_calls = 50 if args.quick else 300
    source, tasks = base_tasks()
    res: dict = {"machine": machine(), "data": source, "params": PARAMS, "n_tasks": n_tasks, "train": {},
                 "predict": []}
    print(f"{source}; {n_tasks} tasks per path; {n_calls} predict calls per client")

    core = ELLA(**PARAMS)
    res["train"]["core (in-process ELLA)"] = rate(lambda: [core.partial_fit(X, y, t) for t, X, y in stream_of(tasks, n_tasks, "core")], n_tasks)
    with tempfile.TemporaryDirectory(prefix="ella-bench-") as ckpt:
        engine = Engine.local(num_learners=2, checkpoint_dir=ckpt, num_cpus=2)
        try:
            with EmbeddedServer(engine, "127.0.0.1", 0) as server, Client(server.target, timeout=120) as c:
                for label, model, fn in [
                    ("engine submit (one at a time)", "e1", lambda s: [engine.submit("e1", *t) for t in s]),
                    ("engine submit_many (pipelined)", "e2", lambda s: engine.submit_many("e2", s)),
                    ("gRPC train (one task per call)", "g1", lambda s: [c.train("g1", *t) for t in s]),
                    ("gRPC train_stream (one stream)", "g2", lambda s: c.train_stream("g2", s)),
                ]:
                    engine.create_model(model, **PARAMS)
                    s = stream_of(tasks, n_tasks, model)
                    res["train"][label] = rate(lambda fn=fn, s=s: fn(s), n_tasks)
                    print(f"  {label:34s} {res['train'][label]['tasks_per_s']:8.1f} tasks/s")
                # predictions on the model trained one task per call
                tid = "g1-0"
                X = tasks[0][1]
                clients = [Client(server.target, timeout=60) for _ in range(8)]
                try:
                    combos = [(rows, th) for rows in (1, 8, 64) for th in (1, 8)]
                    for rows, th in tqdm(combos, desc="predict latency", leave=False):
                        Xb = np.ascontiguousarray(X[:rows])
                        row = {"rows": rows, "clients": th}
                        row["grpc"] = latencies(lambda i, Xb=Xb: clients[i].decision_function("g1", tid, Xb), n_calls, th)
                        row["engine"] = latencies(lambda i, Xb=Xb: engine.decision_function("g1", tid, Xb), n_calls, th)
                        engine.snapshot_max_age, age = 0.0, engine.snapshot_max_age  # the actor round trip, for reference
                        try:
                            row["engine_nocache"] = latencies(lambda i, Xb=Xb: engine.decision_function("g1", tid, Xb),
                                                              n_calls, th)
                        finally:
                            engine.snapshot_max_age = age
                        row["core"] = latencies(lambda i, Xb=Xb: core.decision_function(Xb, "core-0"), n_calls, th)
                        if th == 1:
                            row["grpc_process"] = latencies_other_process(server.target, "g1", tid, Xb, n_calls)
                        res["predict"].append(row)
                        print(f"  predict {rows:2d} rows x {th} clients: gRPC p50 {row['grpc']['p50_ms']:.2f} ms "
                              f"p99 {row['grpc']['p99_ms']:.2f} ms; engine p50 {row['engine']['p50_ms']:.2f} ms")
                    res["snapshot_cache"] = {"snapshot_max_age": engine.snapshot_max_age, **engine.cache_stats}
                finally:
                    for cl in clients:
                        cl.close()
        finally:
            engine.shutdown()

    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    tr = res["train"]
    best_engine = max(tr["engine submit (one at a time)"]["tasks_per_s"], tr["engine submit_many (pipelined)"]["tasks_per_s"])
    best_grpc = max(tr["gRPC train (one task per call)"]["tasks_per_s"], tr["gRPC train_stream (one stream)"]["tasks_per_s"])
    p99_64 = max(r["grpc"]["p99_ms"] for r in res["predict"] if r["rows"] == 64 and r["clients"] == 1)
    p99_64_proc = max(r["grpc_process"]["p99_ms"] for r in res["predict"] if r["rows"] == 64 and r["clients"] == 1)
    res["targets"] = {
        "grpc_vs_engine_throughput": best_grpc / best_engine,
        "grpc_ge_50pct_of_engine": best_grpc >= 0.5 * best_engine,
        "predict_p99_64_rows_1_client_ms": p99_64,
        "predict_p99_64_rows_lt_5ms": p99_64 < 5.0,
        "predict_p99_64_rows_1_client_process_ms": p99_64_proc,
        "predict_p99_64_rows_client_process_lt_5ms": p99_64_proc < 5.0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "service_load.json").write_text(json.dumps(res, indent=2))
    (out / "service_load.md").write_text(markdown(res))
    plot(res, out / "service_load.png")
    print(markdown(res))
    return 0


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Service load (bench/service_load.py)",
        "",
        f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, Ray {m['ray']}, grpcio {m['grpcio']}; {m['time']}.",
        f"Load average (1, 5, 15 min) at start {m.get('loadavg_start', '?')}, at end {m.get('loadavg_end', '?')} "
        "(the machine is shared; the load is other work plus this run).",
        f"Data: {res['data']}; {res['n_tasks']} tasks per path; ELLA {res['params']}. Engine: embedded local Ray, "
        "2 learners, checkpoints + fsync'd update log on. gRPC on loopback, plaintext, no token.",
        "",
        "| training path | tasks/s | seconds |",
        "| --- | ---: | ---: |",
    ]
    for k, v in res["train"].items():
        lines.append(f"| {k} | {v['tasks_per_s']:.1f} | {v['seconds']:.2f} |")
    lines += ["", "gRPC: client threads in this process; gRPC, client process: one client in its own Python process "
              "(1-client rows only).", "",
              "| rows | clients | gRPC p50 ms | gRPC p99 ms | gRPC calls/s | gRPC, client process p50 / p99 ms "
              "| engine p50 ms | engine p99 ms | engine, no cache p50 / p99 ms | core p50 ms |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["predict"]:
        gp = r.get("grpc_process")
        proc = f"{gp['p50_ms']:.2f} / {gp['p99_ms']:.2f}" if gp else "-"
        nc = r.get("engine_nocache")
        nocache = f"{nc['p50_ms']:.2f} / {nc['p99_ms']:.2f}" if nc else "-"
        lines.append(f"| {r['rows']} | {r['clients']} | {r['grpc']['p50_ms']:.2f} | {r['grpc']['p99_ms']:.2f} | "
                     f"{r['grpc']['calls_per_s']:.0f} | {proc} | {r['engine']['p50_ms']:.2f} | {r['engine']['p99_ms']:.2f} | "
                     f"{nocache} | {r['core']['p50_ms']:.3f} |")
    sc = res.get("snapshot_cache")
    if sc:
        lines += ["", f"Engine snapshot cache (`snapshot_max_age={sc['snapshot_max_age']}` s): {sc['hits']} predictions "
                  f"answered from the cache, {sc['fetches']} snapshot fetches ({sc['unchanged']} of them answered "
                  "'unchanged'). The gRPC and engine columns use the cache; 'engine, no cache' is the same engine "
                  "with `snapshot_max_age=0` (one parameter-actor call per prediction)."]
    t = res["targets"]
    lines += ["", f"Targets: best gRPC path / best engine path = {t['grpc_vs_engine_throughput']:.2f} "
              f"(target >= 0.5: {'met' if t['grpc_ge_50pct_of_engine'] else 'NOT met'}); predict p99 for 64 rows, "
              f"1 client = {t['predict_p99_64_rows_1_client_ms']:.2f} ms (target < 5 ms: "
              f"{'met' if t['predict_p99_64_rows_lt_5ms'] else 'NOT met'}); with the client in its own process "
              f"{t['predict_p99_64_rows_1_client_process_ms']:.2f} ms "
              f"({'met' if t['predict_p99_64_rows_client_process_lt_5ms'] else 'NOT met'}).", ""]
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(res["train"])
    a.barh(names, [res["train"][k]["tasks_per_s"] for k in names], color="tab:blue")
    a.set_xlabel("tasks / s")
    a.set_title("training throughput (land-mine-sized tasks)")
    labels = [f"{r['rows']}r x{r['clients']}" for r in res["predict"]]
    x = np.arange(len(labels))
    for j, (key, color) in enumerate([("grpc", "tab:orange"), ("engine", "tab:green")]):
        b.bar(x + (j - 0.5) * 0.38, [r[key]["p99_ms"] for r in res["predict"]], 0.38, label=f"{key} p99", color=color)
        b.scatter(x + (j - 0.5) * 0.38, [r[key]["p50_ms"] for r in res["predict"]], color="black", s=10,
                  label="p50" if j == 0 else None, zorder=3)
    b.axhline(5.0, ls="--", color="gray", lw=1)
    b.set_xticks(x, labels)
    b.set_ylabel("latency (ms)")
    b.set_title("predict latency (rows x concurrent clients)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
