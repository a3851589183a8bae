"""HTTP servers on loopback: image hosts and stand-ins, on free ports."""

from __future__ import annotations

from aiohttp import web

from app.kafka.local import free_port


async def serve_on_loopback(
    app: web.Application, shutdown_timeout_s: float = 60.0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; return its runner (``cleanup()`` stops it) and URL.

    A short ``shutdown_timeout_s`` keeps deliberately stalling handlers from holding cleanup.
    """
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"
