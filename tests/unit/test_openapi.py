"""/openapi.json describes exactly the routes the worker serves."""

from __future__ import annotations

from aiohttp import web

from app.settings import Settings
from app.web import context
from app.web.openapi import OPENAPI
from app.web.routes import install_routes

# Pages and scrape targets, not the API.
UNDOCUMENTED = {
    ("GET", "/dashboard"),
    ("GET", "/dashboard/thumbnail/{result_id}"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/status/"),
    ("GET", "/samples/{name}"),  # development only (OCRSTREAM_SERVE_SAMPLES)
}


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    application = web.Application()
    application[context.SETTINGS] = Settings(cors_origins="https://page.example")
    install_routes(application)
    served = {
        (route.method, route.resource.canonical)
        for route in application.router.routes()
        # HEAD beside each GET; OPTIONS: the CORS preflights (aiohttp-cors answers them).
        if route.method not in {"HEAD", "OPTIONS"} and route.resource is not None
    }
    documented = {
        (method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item
    }
    assert served - UNDOCUMENTED == documented


def test_every_operation_documents_its_errors_and_security() -> None:
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert codes & {"200", "201", "101"}, (method, path)  # 101: the WebSocket
            assert {"401", "403"} <= codes, (method, path)
            assert operation["security"], (method, path)
