"""How the cost of one more task grows with the number of tasks T (issue 2, section 4).

Part 1, streams: the paper's synthetic tasks (k=6 latent components, d=12 features +
bias, 100 rows per task). For T = 10, 100, 1,000 (``--sizes``):

- ELLA: learn T tasks, then time adding task T+1 (a copy of the T-task model per
  repeat, a different new task each time; median over ``--repeats``). Algorithm 1's
  cost per task does not depend on T, so this should stay flat.
- GO-MTL: retrain on all T+1 tasks (it is a batch method), median over repeats.
- STL: fit task T+1 alone, the floor ELLA cannot beat (ELLA = this fit + the sparse
  code + the L step).
- ELLA's mean time per task over the whole stream of T tasks.

Part 2, the L step: ELLA with ``l_solver`` = cholesky / eigen (the paper's appendix) /
cg for growing kd, time to add one task after ``WARM`` tasks, and the largest
difference of the resulting L from the Cholesky one.

Single-threaded BLAS. Writes ``scaling.json``, ``scaling.md`` and ``scaling.png`` to
``--out`` (``scaling_quick.*`` with ``--quick``). Run: ``.venv/bin/python bench/scaling.py``
(``ella-dist bench scaling`` once "scaling" is registered in ``ella_dist/cli.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS_DIR,
    fmt_ratio,
    fmt_seconds,
    machine_facts,
    machine_markdown,
    markdown_table,
    progress,
    single_threaded_blas,
    summary,
    timed,
    write_json,
    write_text,
)

single_threaded_blas()

import numpy as np  # noqa: E402

from ella_dist import ELLA, GOMTL, STL  # noqa: E402
from ella_dist.datasets import make_synthetic  # noqa: E402

ELLA_PARAMS = {"k": 6, "lam": math.exp(-5), "mu": 1e-3, "ridge": 1e-2, "init": "random"}
GOMTL_PARAMS = {"k": 6, "lam": math.exp(-5), "mu": 1e-3, "ridge": 1e-2}
SOLVERS = ("cholesky", "eigen", "cg")
# (k, features) -> kd = k * (features + 1)
SOLVER_SIZES = [(2, 12), (6, 12), (10, 13), (10, 27), (10, 55), (20, 49)]
WARM = 12


def stream_scaling(sizes: list[int], repeats: int, gomtl_repeats: int, seed: int) -> tuple[list[dict], dict]:
    """Per-size rows, plus the per-task times of one long ELLA / STL stream."""
    n_stream = max(sizes) + repeats
    tasks = make_synthetic(n_tasks=n_stream + repeats, n_per_task=100, random_state=seed)
    extra = tasks[n_stream:]  # new tasks, never part of any stream
    # (a) one long stream, every partial_fit timed: the cost of task t as a function of t.
    ella_stream, stl_stream = ELLA(random_state=seed, **ELLA_PARAMS), STL(ridge=ELLA_PARAMS["ridge"])
    t_ella, t_stl = np.empty(n_stream), np.empty(n_stream)
    for i in progress(range(n_stream), desc="timed stream", leave=False):
        tid, X, y = tasks[i]
        t_ella[i] = timed(lambda tid=tid, X=X, y=y: ella_stream.partial_fit(X, y, task_id=tid))
        t_stl[i] = timed(lambda tid=tid, X=X, y=y: stl_stream.partial_fit(X, y, task_id=tid))
    rows = []
    for T in progress(sizes, desc="stream sizes"):
        stream = tasks[:T]
        model = ELLA(random_state=seed, **ELLA_PARAMS)
        t_stream = timed(lambda model=model, stream=stream: model.fit(stream))
        stl = STL(ridge=ELLA_PARAMS["ridge"]).fit(stream)
        # (b) exactly task T+1: a copy of the T-task model per repeat, ELLA and STL interleaved.
        ella_new, stl_new = [], []
        for rep in range(repeats):
            tid, X, y = extra[rep]
            m, s = copy.deepcopy(model), copy.deepcopy(stl)
            ella_new.append(timed(lambda m=m, X=X, y=y, tid=tid: m.partial_fit(X, y, task_id=tid)))
            stl_new.append(timed(lambda s=s, X=X, y=y, tid=tid: s.partial_fit(X, y, task_id=tid)))
        gomtl_new, iters = [], []
        for rep in progress(range(gomtl_repeats), desc=f"GO-MTL retrain T+1={T + 1}", leave=False):
            g, batch = GOMTL(**GOMTL_PARAMS), [*stream, extra[rep]]
            gomtl_new.append(timed(lambda g=g, batch=batch: g.fit(batch)))
            iters.append(g.n_iter_)
        e, s, g = summary(ella_new), summary(stl_new), summary(gomtl_new)
        win_e, win_s = summary(t_ella[T : T + repeats]), summary(t_stl[T : T + repeats])
        rows.append(
            {
                "T": T,
                "ella_new": e,
                "stl_new": s,
                "gomtl_retrain": g,
                "gomtl_iterations": summary(iters),
                "ella_stream_total": t_stream,
                "ella_per_task_in_stream": t_stream / T,
                "gomtl_over_ella": g["median"] / e["median"],
                "ella_over_stl": e["median"] / s["median"],
                "ella_over_stl_min": e["min"] / s["min"],
                "stream_window": {"tasks": [T + 1, T + repeats], "ella": win_e, "stl": win_s,
                                  "ella_over_stl": win_e["median"] / win_s["median"]},
            }
        )
    per_task = {"ella": t_ella, "stl": t_stl}
    return rows, per_task


def solver_comparison(sizes: list[tuple[int, int]], repeats: int, seed: int, eigen_max_kd: int) -> list[dict]:
    rows = []
    for k, p in progress(sizes, desc="L-step solvers"):
        d = p + 1
        tasks = make_synthetic(n_tasks=WARM + repeats, n_per_task=max(2 * d, 50), k=min(k, 6), d=p, random_state=seed)
        row: dict[str, Any] = {"k": k, "d": d, "kd": k * d}
        L_ref = None
        for solver in SOLVERS:
            if solver == "eigen" and k * d > eigen_max_kd:
                row[solver] = None
                continue
            model = ELLA(random_state=seed, l_solver=solver, **{**ELLA_PARAMS, "k": k})
            model.fit(tasks[:WARM])
            times = []
            for rep in range(repeats):
                tid, X, y = tasks[WARM + rep]
                m = copy.deepcopy(model)
                times.append(timed(lambda m=m, X=X, y=y, tid=tid: m.partial_fit(X, y, task_id=tid)))
            if L_ref is None:
                L_ref = model.L_
            row[solver] = {
                **summary(times),
                "max_abs_diff_L_vs_cholesky": float(np.max(np.abs(model.L_ - L_ref))),
            }
        rows.append(row)
    return rows


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    rows = report["streams"]
    T = [r["T"] for r in rows]
    for key, label in (("ella_new", "ELLA: add task T+1"), ("gomtl_retrain", "GO-MTL: retrain on T+1"), ("stl_new", "STL: fit task T+1")):
        a1.errorbar(
            T,
            [r[key]["median"] for r in rows],
            yerr=[[r[key]["median"] - r[key]["min"] for r in rows], [r[key]["max"] - r[key]["median"] for r in rows]],
            marker="o",
            label=label,
            capsize=3,
        )
    pts = report.get("per_task_stream")
    if pts is not None:
        e = np.asarray(pts["ella"], dtype=float)
        x = np.arange(1, e.size + 1)
        w = 9
        smooth = np.array([np.median(e[max(0, i - w) : i + w + 1]) for i in range(e.size)])
        a1.plot(x, smooth, color="C0", alpha=0.4, lw=1, label="ELLA: each task of one stream (running median)")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("tasks already learned, T")
    a1.set_ylabel("seconds (median, min-max bars)")
    a1.set_title("Cost of one more task (synthetic, k=6, d=13)")
    a1.legend(fontsize=8)
    srows = report["solvers"]
    for solver in SOLVERS:
        pts = [(r["kd"], r[solver]["median"]) for r in srows if r.get(solver)]
        a2.plot(*zip(*pts), marker="o", label=solver)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("kd")
    a2.set_ylabel("seconds per new task (median)")
    a2.set_title("ELLA partial_fit by L-step solver")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_report(report: dict) -> str:
    lines = [
        "# Scaling: the cost of task T+1",
        "",
        f"Command: `{report['command']}`. Wall time {report['wall_seconds']:.0f} s.",
        "",
        "## Machine",
        machine_markdown(report["machine"]),
        "",
        "## Synthetic streams (k=6, d=12 + bias, 100 rows per task)",
        "",
        f"ELLA {report['ella_params']}; GO-MTL {report['gomtl_params']} (tol 1e-3). Medians over "
        f"{report['config']['repeats']} new tasks (ELLA, STL) and {report['config']['gomtl_repeats']} retrains (GO-MTL).",
        "",
    ]
    rows = []
    for r in report["streams"]:
        rows.append(
            [
                f"{r['T']:,}",
                f"{fmt_seconds(r['ella_new']['median'])} (min {fmt_seconds(r['ella_new']['min'])})",
                fmt_seconds(r["gomtl_retrain"]["median"]),
                f"{r['gomtl_iterations']['median']:.0f}",
                fmt_ratio(r["gomtl_over_ella"]),
                f"{fmt_seconds(r['stl_new']['median'])} (min {fmt_seconds(r['stl_new']['min'])})",
                f"{r['ella_over_stl']:.1f}x (min/min {r['ella_over_stl_min']:.1f}x)",
                f"{fmt_seconds(r['stream_window']['ella']['median'])} / {fmt_seconds(r['stream_window']['stl']['median'])}",
                fmt_seconds(r["ella_per_task_in_stream"]),
            ]
        )
    lines.append(
        markdown_table(
            ["T", "ELLA: add T+1", "GO-MTL: retrain T+1", "GO-MTL iters", "GO-MTL / ELLA", "STL: fit T+1",
             "ELLA / STL", "stream, tasks T+1.. (ELLA / STL)", "ELLA mean per task, stream of T"],
            rows,
        )
    )
    f = report["flatness"]
    lines += [
        "",
        f"ELLA add-one-task time at T={f['T_last']:,} vs T={f['T_first']}: {f['ratio']:.2f}x by medians, "
        f"{f['ratio_min']:.2f}x by minima, {f['ratio_stream_window']:.2f}x in the timed stream (flat = about 1).",
        "",
        "\"add T+1\": a copy of the T-task model learns one new task (median and min over repeats, ELLA and STL "
        "interleaved; cyclic GC paused as in timeit). \"stream\": one long stream with every partial_fit timed; median "
        "over the tasks that arrive right after task T: the amortised cost, and the figure to judge flatness by. "
        "The copy-based figure rises with T although partial_fit makes the same Python calls at every T: the first "
        "call on a freshly deep-copied 1,000-task model pays cache and allocator effects of the copy. The machine "
        "is shared, so minima are the least disturbed figures.",
        "",
        "## L-step solvers (time to add one task after 12 tasks; median)",
        "",
    ]
    rows = []
    for r in report["solvers"]:
        cells = [f"{r['k']}", f"{r['d']}", f"{r['kd']}"]
        for s in SOLVERS:
            v = r.get(s)
            cells.append("skipped" if v is None else f"{fmt_seconds(v['median'])} (ΔL {v['max_abs_diff_L_vs_cholesky']:.1e})")
        rows.append(cells)
    lines.append(markdown_table(["k", "d", "kd", "cholesky", "eigen (appendix)", "cg"], rows))
    lines += ["", "ΔL: largest |L - L_cholesky| after the warm-up tasks (agreement check).", "",
              f"Figure: `{report['figure']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scaling.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small run (T up to 100, fewer repeats)")
    p.add_argument("--out", default=str(RESULTS_DIR))
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="stream lengths T (default 10 100 1000)")
    p.add_argument("--repeats", type=int, default=None, help="new tasks timed per T (default 31)")
    p.add_argument("--gomtl-repeats", type=int, default=None, help="GO-MTL retrains per T (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None)
    p.add_argument("--render", metavar="JSON", default=None, help="only re-write the markdown of an earlier run's JSON")
    args = p.parse_args(argv)
    if args.render:
        src = Path(args.render)
        write_text(src.with_suffix(".md"), markdown_report(json.loads(src.read_text())))
        return 0
    sizes = args.sizes or ([10, 100] if args.quick else [10, 100, 1000])
    repeats = args.repeats or (5 if args.quick else 31)
    gomtl_repeats = args.gomtl_repeats or (1 if args.quick else 3)
    solver_sizes = SOLVER_SIZES[:4] if args.quick else SOLVER_SIZES
    eigen_max_kd = 300 if args.quick else 1000
    stem = args.name or ("scaling_quick" if args.quick else "scaling")
    command = "python bench/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "scaling",
        "command": command.strip(),
        "machine": machine_facts(),
        "config": {"sizes": sizes, "repeats": repeats, "gomtl_repeats": gomtl_repeats, "seed": args.seed,
                   "solver_sizes": solver_sizes, "warm_tasks": WARM, "quick": args.quick},
        "ella_params": ELLA_PARAMS,
        "gomtl_params": GOMTL_PARAMS,
    }
    report["streams"], report["per_task_stream"] = stream_scaling(sizes, repeats, gomtl_repeats, args.seed)
    report["solvers"] = solver_comparison(solver_sizes, max(3, repeats // 3), args.seed, eigen_max_kd)
    first, last = report["streams"][0], report["streams"][-1]
    report["flatness"] = {
        "T_first": first["T"],
        "T_last": last["T"],
        "ratio": last["ella_new"]["median"] / first["ella_new"]["median"],
        "ratio_min": last["ella_new"]["min"] / first["ella_new"]["min"],
        "ratio_stream_window": last["stream_window"]["ella"]["median"] / first["stream_window"]["ella"]["median"],
    }
    report["wall_seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report["figure"] = plot(report, out / f"{stem}.png").name
    write_json(out / f"{stem}.json", report)
    write_text(out / f"{stem}.md", markdown_report(report))
    print(markdown_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
