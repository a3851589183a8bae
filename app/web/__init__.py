"""The HTTP API served by the worker's web server (Faust's aiohttp application)."""
