"""Throughput and latency of `GET /get_report` for a finished report, against the real stack.

    python scripts/api_benchmark.py [--requests N] [--concurrency C]

Loads the bundled sample into a scratch storemon home, creates an API token (so every request
goes through the token check, SPEC §10: a remembered token costs no database read), starts
`dagster dev` and `storemon api` (the end-to-end tests' helpers), triggers one report, waits for
it, then polls it N times from C keep-alive connections (a bare asyncio HTTP/1.1 client), each
request with `Authorization: Bearer <token>`. Prints requests per second and
latency percentiles. The client shares the machine with the server: on 2 cores a load tool
written in C or Go (`hey`, `wrk`) shows somewhat higher figures. Compare runs on one machine,
not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from storemon_assets.db.engine import create_db_engine
from storemon_assets.db.tokens import create_token
from storemon_assets.local_servers import dagster_dev, poll_report, prepared_home, storemon_api
from storemon_assets.settings import sqlite_url


async def load(url: str, requests: int, concurrency: int, token: str) -> tuple[float, list[float]]:
    """`requests` GETs of `url` over `concurrency` keep-alive connections; (seconds, latencies).

    A bare HTTP/1.1 client on asyncio streams: a general client (httpx) costs more CPU per request
    than the server does, and on a small machine it would measure itself."""
    parsed = urlsplit(url)
    request = (
        f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def connection():
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        for _ in remaining:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    home = prepared_home(Path(tempfile.mkdtemp(prefix="storemon-api-bench-")))
    engine = create_db_engine(sqlite_url(home / "data" / "storemon.db"))
    token = create_token(engine, "bench", "trigger")
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    with dagster_dev(home) as dagster_url, storemon_api(home, dagster_url) as api:
        report_id = httpx.post(f"{api}/trigger_report", headers=headers, timeout=30).json()["report_id"]
        size = len(poll_report(api, report_id, headers=headers).content)
        url = f"{api}/get_report?report_id={report_id}"
        asyncio.run(load(url, 200, args.concurrency, token))  # warm up: the finished run and token are remembered
        elapsed, latencies = asyncio.run(load(url, args.requests, args.concurrency, token))
    cuts = statistics.quantiles(latencies, n=100)
    print(f"GET /get_report of a finished report ({size:,} bytes) with a token, concurrency {args.concurrency}:")
    print(f"  {args.requests / elapsed:,.0f} requests/s over {args.requests:,} requests")
    print(f"  latency p50 {cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")
    print(f"  load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min; the box may be shared)")


if __name__ == "__main__":
    main()
