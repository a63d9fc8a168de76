"""Throughput and latency of `GET /get_report` for a finished report, against the real stack.

    python scripts/api_benchmark.py [--requests N] [--concurrency C]

Loads the bundled sample into a scratch storemon home, starts `dagster dev` and `storemon api`
(the end-to-end tests' helpers), triggers one report, waits for it, then polls it N times from
C concurrent asyncio clients. Prints requests per second and latency percentiles. The client
shares the machine with the server: on 2 cores a load tool written in C or Go (`hey`, `wrk`)
shows somewhat higher figures. Compare runs on one machine, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers start the real stack
from storemon_tests.dagster_server import dagster_dev, storemon_api  # noqa: E402
from storemon_tests.test_api import poll, prepared_home  # noqa: E402


async def load(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker():
            for _ in remaining:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    home = prepared_home(Path(tempfile.mkdtemp(prefix="storemon-api-bench-")))
    with dagster_dev(home) as dagster_url, storemon_api(home, dagster_url) as api:
        report_id = httpx.post(f"{api}/trigger_report", timeout=30).json()["report_id"]
        size = len(poll(api, report_id).content)
        url = f"{api}/get_report?report_id={report_id}"
        asyncio.run(load(url, 200, args.concurrency))  # warm up: the finished run is remembered
        elapsed, latencies = asyncio.run(load(url, args.requests, args.concurrency))
    cuts = statistics.quantiles(latencies, n=100)
    print(f"GET /get_report of a finished report ({size:,} bytes), concurrency {args.concurrency}:")
    print(f"  {args.requests / elapsed:,.0f} requests/s over {args.requests:,} requests")
    print(f"  latency p50 {cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
