"""Helpers shared by the benchmarks in bench/: machine facts, timing, JSON and markdown.

Import from a benchmark script with::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_facts, write_json, markdown_table, ...

(``ella-dist bench NAME`` runs the scripts with :func:`runpy.run_path`, which does not
put bench/ on ``sys.path`` by itself.)

Nothing here imports Ray or gRPC; numpy is imported lazily where needed so that
:func:`single_threaded_blas` can still take effect when called first.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas() -> None:
    """Ask BLAS for one thread (only effective before numpy is first imported).

    Timings of small dense problems are steadier single-threaded, and the benchmarks
    then leave the other core to whoever shares the machine. An explicit setting in
    the environment wins.
    """
    for name in _BLAS_ENV:
        os.environ.setdefault(name, "1")


# -- machine facts ------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_facts() -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python/numpy/scipy versions, BLAS threads, git commit, date (UTC)."""
    import numpy as np
    import scipy

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    commit = _git("rev-parse", "HEAD")
    # Only what the benchmarks import: others' work in progress elsewhere does not count.
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "ella_dist/core", "ella_dist/datasets.py",
                 "bench/_common.py", sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "bench")
    return {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": _ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas_threads_env": {k: os.environ.get(k) for k in _BLAS_ENV},
        "load_average_at_start": load,
        "git_commit": commit,
        "git_dirty_code": bool(dirty) if dirty is not None else None,
        "argv": sys.argv,
    }


def machine_markdown(m: dict[str, Any]) -> str:
    """The machine facts as a short markdown bullet list."""
    blas = ", ".join(f"{k}={v}" for k, v in m["blas_threads_env"].items() if v is not None) or "default"
    commit = (m.get("git_commit") or "?")[:10] + (" (+uncommitted changes)" if m.get("git_dirty_code") else "")
    return "\n".join(
        [
            f"- CPU: {m['cpu_model']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores; "
            f"RAM {m['ram_gb']} GB",
            f"- {m['os']}; Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}; BLAS threads: {blas}",
            f"- date (UTC) {m['date_utc']}; git {commit}; load average at start {m['load_average_at_start']}",
        ]
    )


# -- timing ---------------------------------------------------------------------------------
def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, by ``time.perf_counter``, with the cyclic GC paused.

    Like :mod:`timeit`: a collection triggered inside the timed call would walk every
    object alive (e.g. a deep-copied model with 1,000 tasks) and charge it to the call.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()
    return elapsed, out


def timed(fn: Callable[[], Any]) -> float:
    """Seconds of one call of ``fn`` (see :func:`time_call`)."""
    return time_call(fn)[0]


def median_time(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Median / min / max seconds of ``fn(setup())`` (or ``fn()``) over ``repeats`` calls.

    ``setup`` runs outside the timed region; its result is passed to ``fn``.
    """
    times = []
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        times.append(timed((lambda a=arg: fn(a)) if setup is not None else fn))
    return summary(times)


def summary(values: Iterable[float]) -> dict[str, Any]:
    """median, mean, sd (sample), min, max and n of finite values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"median": None, "mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(vals),
        "mean": statistics.fmean(vals),
        "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


# -- output -----------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN/inf
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (numpy types converted, NaN/inf -> null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one char per column ('l', 'r', 'c')."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_pm(mean: float | None, sd: float | None, digits: int = 3, suffix: str = "") -> str:
    """``mean ± sd`` (or ``n/a``)."""
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}{suffix}" if sd is not None else f"{mean:.{digits}f}{suffix}"


def fmt_seconds(s: float | None) -> str:
    """Seconds with a unit suited to the magnitude (µs / ms / s)."""
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(x: float | None) -> str:
    """A speed-up like ``1,234x`` (or ``2.5x`` below 10)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.1f}x" if x < 10 else f"{x:,.0f}x"


def progress(iterable: Iterable, **kwargs: Any) -> Iterable:
    """tqdm progress bar on stderr (disabled when ``ELLA_BENCH_NO_PROGRESS`` is set)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", bool(os.environ.get("ELLA_BENCH_NO_PROGRESS")))
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
