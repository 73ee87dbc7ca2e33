"""Reading a service's Prometheus page as a scrape does: serve its registry on an ephemeral port, as `paygate
serve` serves it on its own, and read one sample out of the text."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp

from paygate_runtime.metrics import MetricsServer, ServiceMetrics


@contextlib.asynccontextmanager
async def metrics_port(metrics: ServiceMetrics) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A function that fetches `metrics`' page over HTTP, for as long as the block runs."""
    server = MetricsServer(metrics, "127.0.0.1", 0)
    await server.start()

    async def fetch() -> str:
        url = f"http://127.0.0.1:{server.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return await response.text()

    try:
        yield fetch
    finally:
        await server.stop()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
