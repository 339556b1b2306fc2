"""Load on a running llm-atlas server: requests/s and latency percentiles for /v1/ask.

    python -m bench.server_load --url http://127.0.0.1:8000 --concurrency 1 8 --n 200

`measure_server` is what `llm-atlas bench` reuses. Each client is a thread with its own
keep-alive connection sending requests back to back; questions rotate over a fixed mix of
English and Chinese ones, answered extractively (`llm: false`) unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx

QUESTIONS = [
    "What is the context length of Llama 2?",
    "Which license does Falcon-7B use?",
    "ChatGLM-6B 需要多少显存？",
    "What data was Alpaca fine-tuned on?",
    "How many parameters does BLOOM have?",
    "Baichuan-7B 使用了多少训练数据？",
    "What is QLoRA?",
    "Who made Dolly 2.0 and what is its license?",
]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def measure_server(
    base_url: str,
    concurrency: int,
    n: int,
    *,
    api_key: str | None = None,
    use_llm: bool = False,
    questions: list[str] | None = None,
    warmup: int = 2,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Send `n` POST /v1/ask requests from `concurrency` clients; return throughput and latencies (ms)."""
    questions = questions or QUESTIONS
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/v1/ask"
    with httpx.Client(timeout=timeout, headers=headers) as http:
        for i in range(warmup):  # first answers load lazy parts; keep them out of the numbers
            http.post(url, json={"question": questions[i % len(questions)], "llm": use_llm})

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def client() -> None:
        with httpx.Client(timeout=timeout, headers=headers) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body = {"question": questions[i % len(questions)], "llm": use_llm}
                started = time.perf_counter()
                try:
                    response = http.post(url, json=body)
                    ok, detail = response.status_code == 200, f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors.append(detail)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    ms = [value * 1000 for value in ordered]
    return {
        "concurrency": concurrency,
        "requests": n,
        "ok": len(latencies),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(latencies) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else float("nan"),
    }


def process_rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise ValueError(f"no VmRSS for pid {pid}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--n", type=int, default=100, help="requests per concurrency level")
    parser.add_argument("--api-key")
    parser.add_argument("--llm", action="store_true", help="ask with the configured LLM")
    parser.add_argument("--pid", type=int, help="also report this server process's RSS")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"url": args.url, "runs": []}
    if args.pid:
        results["rss_mb_before"] = process_rss_mb(args.pid)
    for concurrency in args.concurrency:
        results["runs"].append(measure_server(args.url, concurrency, args.n, api_key=args.api_key, use_llm=args.llm))
    if args.pid:
        results["rss_mb_after"] = process_rss_mb(args.pid)
    print(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
