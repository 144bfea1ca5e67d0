"""Throughput and submit latency of the Ray engine vs. the number of learners, next to the core.

Workloads
  (a) land-mine-sized tasks: the 29 land-mine tasks (logistic, d=10 with bias,
      n_t 445..690), repeated under fresh ids to get enough tasks; synthetic tasks of
      the same shape if the .mat file is absent.
  (b) an expensive base learner: logistic, n_t = 20,000, d = 100 (fewer tasks).

For each workload: the in-process core (``ELLA.partial_fit`` in a loop) and the engine
with 1, 2 and 4 learners on one embedded Ray (num_cpus = the machine's cores):
  * throughput: all tasks pipelined with ``Engine.submit_many`` (the batched path: several
    tasks per learner call, runs of updates per parameter call; fits in parallel, updates
    in order), tasks/s = tasks / wall time, median of ``REPEATS`` runs;
  * submit latency: ``Engine.submit`` one task at a time (what one synchronous client
    sees), p50 / p99; the core's per-task ``partial_fit`` time for comparison;
  * the served model is checked against the core's (max |L - L_core|).

Writes bench/results/cluster_throughput.{json,md,png}. ``--quick`` runs a smaller version.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# Ray runs every actor with OMP_NUM_THREADS=1; give the in-process core the same single-
# threaded BLAS so the comparison is like for like. (Measured here: a default 2-thread
# OpenBLAS made the core's d=100 logistic fit ~40x slower on a busy 2-core machine.)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from ella_dist.core import ELLA  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PARAMS = dict(k=4, mu=1e-3, lam=1e-2, loss="logistic", ridge=1e-2, random_state=0)


def machine() -> dict[str, str]:
    import ray

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                          if ln.startswith("MemTotal")).split()[1])
        ram = f"{mem_kb / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        ram = "unknown"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram": ram, "python": platform.python_version(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "ray": ray.__version__, "numpy": np.__version__, "platform": platform.platform()}


def landmine_tasks(copies: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], str]:
    try:
        from ella_dist.datasets import load_landmine

        base = [(t.task_id, t.X, t.y) for t in load_landmine()]
        source = "land mine (29 tasks)"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        base = []
        for i in range(29):
            X = rng.normal(size=(511, 9))
            base.append((f"mine-{i}", X, (X @ rng.normal(size=9) + rng.logistic(size=511) > 0).astype(float)))
        source = "synthetic, land-mine-shaped (data file absent)"
    return [(f"{tid}#{c}", X, y) for c in range(copies) for tid, X, y in base], source


def expensive_tasks(n_tasks: int, n: int, d: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(d, 3))
    out = []
    for i in range(n_tasks):
        X = rng.normal(size=(n, d - 1)) / np.sqrt(d)
        theta = basis[:-1] @ rng.normal(size=3)
        out.append((f"big-{i}", X, (X @ theta + rng.logistic(size=n) > 0).astype(float)))
    return out


REPEATS = 3  # throughput runs per row; the median is reported (the machine is shared and noisy)


def run_core(tasks, repeats: int = REPEATS) -> tuple[dict, ELLA]:
    lat, rates = [], []
    for _ in range(repeats):
        model = ELLA(**PARAMS)
        t0 = time.perf_counter()
        for tid, X, y in tasks:
            s = time.perf_counter()
            model.partial_fit(X, y, tid)
            lat.append(time.perf_counter() - s)
        rates.append(len(tasks) / (time.perf_counter() - t0))
    return {"tasks_per_s": float(np.median(rates)), "tasks_per_s_runs": rates, "p50_ms": 1e3 * np.percentile(lat, 50),
            "p99_ms": 1e3 * np.percentile(lat, 99)}, model


def run_engine(tasks, n_learners: int, latency_tasks: int, core: ELLA, repeats: int = REPEATS,
               checkpoint_dir: str | None = None) -> dict:
    from ella_dist.cluster import Engine

    eng = Engine.local(num_learners=n_learners, max_in_flight=256, checkpoint_dir=checkpoint_dir)
    try:
        eng.create_model("bench", **PARAMS)
        eng.submit("bench", *tasks[0])  # warm-up: actor processes, imports, first round trips
        rates = []
        d0 = eng.status()["driver"]
        for _ in range(repeats):
            eng.clear("bench")
            t0 = time.perf_counter()
            eng.submit_many("bench", tasks)
            rates.append(len(tasks) / (time.perf_counter() - t0))
        d1 = eng.status()["driver"]
        fit_calls = int(d1["fit_calls"]) - int(d0["fit_calls"])
        apply_calls = int(d1["apply_calls"]) - int(d0["apply_calls"])
        diff = float(np.abs(eng.basis("bench") - core.L_).max())
        lat = []
        for tid, X, y in tasks[:latency_tasks]:
            s = time.perf_counter()
            eng.submit("bench", f"lat-{tid}", X, y)
            lat.append(time.perf_counter() - s)
        busy = [float(eng.status()[f"learner-{i}"]["busy_seconds"]) for i in range(n_learners)]
    finally:
        eng.shutdown()
    return {"tasks_per_s": float(np.median(rates)), "tasks_per_s_runs": rates, "p50_ms": 1e3 * np.percentile(lat, 50),
            "p99_ms": 1e3 * np.percentile(lat, 99), "max_abs_L_diff_vs_core": diff,
            "tasks_per_fit_call": repeats * len(tasks) / max(fit_calls, 1),
            "tasks_per_apply_call": repeats * len(tasks) / max(apply_calls, 1),
            "learner_busy_s": busy, "latency_samples": len(lat)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer/smaller tasks (a smoke run)")
    ap.add_argument("--learners", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-durable", action="store_true", help="skip the checkpoint_dir row of (a)")
    args = ap.parse_args(argv)

    import ray

    from ella_dist.cluster import init_local_ray

    init_local_ray(num_cpus=os.cpu_count(), auth_mode=os.environ.get("RAY_AUTH_MODE"))
    small, source = landmine_tasks(1 if args.quick else 4)
    big_n, big_d, big_tasks = (5_000, 100, 4) if args.quick else (20_000, 100, 8)
    big = expensive_tasks(big_tasks, big_n, big_d)
    workloads = {
        "a_landmine": {"label": f"(a) {source}, x{len(small) // 29}: {len(small)} tasks, logistic, d=10",
                       "tasks": small, "latency_tasks": min(len(small), 60)},
        "b_expensive": {"label": f"(b) expensive: {big_tasks} tasks, logistic, n_t={big_n}, d={big_d}",
                        "tasks": big, "latency_tasks": big_tasks},
    }
    results: dict = {"machine": machine(), "quick": args.quick, "params": PARAMS, "workloads": {}}
    print(json.dumps(results["machine"], indent=1))
    for key, w in workloads.items():
        core_stats, core = run_core(w["tasks"])
        rows = {"core": core_stats}
        print(f"{w['label']}\n  core: {core_stats['tasks_per_s']:.1f} tasks/s", flush=True)
        for n in args.learners:
            rows[f"engine-{n}"] = run_engine(w["tasks"], n, w["latency_tasks"], core)
            r = rows[f"engine-{n}"]
            print(f"  {n} learner(s): {r['tasks_per_s']:.1f} tasks/s, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, max abs dL {r['max_abs_L_diff_vs_core']:.1e}", flush=True)
        if key == "a_landmine" and not args.no_durable:
            # The production setting: checkpoint_dir (update log fsync'd before each ack, learners
            # write each task's state) on local disk; 2 learners.
            import tempfile

            with tempfile.TemporaryDirectory(prefix="ella-bench-") as tmp:
                r = rows["engine-2-durable"] = run_engine(w["tasks"], 2, w["latency_tasks"], core, checkpoint_dir=tmp)
            print(f"  2 learner(s), durable: {r['tasks_per_s']:.1f} tasks/s, p50 {r['p50_ms']:.1f} ms", flush=True)
        results["workloads"][key] = {"label": w["label"], "n_tasks": len(w["tasks"]), "rows": rows}
    ray.shutdown()
    results["machine"]["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write(results, args.out)
    return 0


def _num(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Cluster throughput (bench/cluster_throughput.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM; Python {m['python']}, Ray {m['ray']}, "
        f"numpy {m['numpy']}; BLAS threads {m['blas_threads']} (driver and actors); load average at start "
        f"{m['load_average_at_start']}, at end {m.get('load_average_at_end', '?')} (the machine is shared). "
        f"One embedded Ray with num_cpus={m['cores']}; with more learners than cores "
        "the learners share the cores." + (" **Quick run.**" if results["quick"] else ""),
        "",
        f"Throughput: all tasks pipelined with `submit_many` (the batched path), median of {REPEATS} runs "
        "(min-max in brackets). `tasks/fit call`, `tasks/apply call`: mean batch sizes the engine chose "
        "(adaptive: whatever was ready while the previous call ran). Latency: one synchronous `submit` at a "
        "time (core: one `partial_fit`), i.e. batches of one. `max abs dL`: max abs(L - L_core) of the "
        "served model. Rows without `durable` run without `checkpoint_dir` (no update log, no learner store); the "
        "durable row of (a) writes the fsync'd log and the learners' per-task files on local disk.",
        "",
    ]
    for w in results["workloads"].values():
        core = w["rows"]["core"]["tasks_per_s"]
        lines += [f"## {w['label']}", "",
                  "| run | tasks/s (median) | [min-max] | vs core | tasks/fit call | tasks/apply call "
                  "| submit p50 (ms) | submit p99 (ms) | max abs dL |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in w["rows"].items():
            diff = f"{r['max_abs_L_diff_vs_core']:.1e}" if "max_abs_L_diff_vs_core" in r else "-"
            label = "in-process core" if name == "core" else f"engine, {name.split('-')[1]} learner(s)"
            if name.endswith("-durable"):
                label += ", durable (checkpoint_dir, fsync)"
            runs = r.get("tasks_per_s_runs") or [r["tasks_per_s"]]
            fit_b = f"{r['tasks_per_fit_call']:.1f}" if "tasks_per_fit_call" in r else "-"
            app_b = f"{r['tasks_per_apply_call']:.1f}" if "tasks_per_apply_call" in r else "-"
            lines.append(f"| {label} | {r['tasks_per_s']:.1f} | [{_num(min(runs))}-{_num(max(runs))}] | "
                         f"{r['tasks_per_s'] / core:.2f}x | {fit_b} | {app_b} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {diff} |")
        lines.append("")
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster_throughput.json").write_text(json.dumps(results, indent=1))
    (out / "cluster_throughput.md").write_text(markdown(results))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("matplotlib missing: no PNG", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(results["workloads"]), figsize=(11, 4))
    for ax, w in zip(np.atleast_1d(axes), results["workloads"].values()):
        rows = w["rows"]
        ns = sorted(int(k.split("-")[1]) for k in rows if k != "core" and not k.endswith("-durable"))
        ax.plot(ns, [rows[f"engine-{n}"]["tasks_per_s"] for n in ns], "o-", label="engine")
        ax.axhline(rows["core"]["tasks_per_s"], color="gray", ls="--", label="in-process core")
        ax.set_xticks(ns)
        ax.set_xlabel("learner actors")
        ax.set_ylabel("tasks/s")
        ax.set_title(w["label"], fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(f"{results['machine']['cores']} cores: {results['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "cluster_throughput.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
