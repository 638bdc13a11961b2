"""Listeners for the web applications, on the running event loop.

aiohttp's access log is off: the case page URL is the customer's secret and must not land in
the journal; the page logs its own events (`mailbot.logs.event`) without the signature.
"""

from __future__ import annotations

from aiohttp import web


async def listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port until the returned runner's `cleanup()`."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
