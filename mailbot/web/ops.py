"""The operators' endpoints, on their own listener (`[ops]`), apart from the customers' page.

/healthz answers 200 only when the database answers within HEALTH_TIMEOUT; being answered at all
shows the event loop is alive (a wedged loop answers nothing, which a probe counts as down).
/metrics is the Prometheus text format (mailbot/web/metrics.py).
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mailbot.web.metrics import Metrics

HEALTH_TIMEOUT = 5.0


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


class Ops:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.engine = engine
        self.metrics = metrics

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.scrape)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(asyncio.to_thread(_ping, self.engine), HEALTH_TIMEOUT)
        except Exception as exc:  # any failure is "down"; the reason helps whoever looks
            return web.Response(status=503, text=f"database: {type(exc).__name__}\n")
        return web.Response(text="ok\n")

    async def scrape(self, _request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})
