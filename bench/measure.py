"""Small measuring tools shared by the benchmarks: timers, percentiles, memory, child processes."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a value that was measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean of a list of durations, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else float("nan"),
    }


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[list[float], Any]:
    """Durations of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def proc_status_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A memory line of /proc/PID/status in MiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_child(
    command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> ChildRun:
    """Run a command: its wall time from spawn to exit, and its own peak RSS.

    The peak is the child's VmHWM, read every 10 ms while it runs. Not wait4's ru_maxrss: Linux
    carries the parent's RSS at fork into the child's ru_maxrss, so a child of a 1 GB process
    reports at least 1 GB (seen here: `python -c pass` "peaked" at 1171 MB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=cwd)
        peak = float("nan")
        while proc.poll() is None:
            try:
                now = proc_status_mb(proc.pid, "VmHWM")
            except OSError:  # exited between poll() and the read
                break
            peak = now if peak != peak else max(peak, now)  # nan: a zombie has no memory lines left
            if time.perf_counter() - started > timeout:
                proc.kill()
            time.sleep(0.01)
        proc.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ChildRun(proc.returncode, seconds, peak, out.read(), err.read())


def disk_bytes(path: Path) -> int:
    """Size of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (they only compare on the same kind of machine)."""
    import platform

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
