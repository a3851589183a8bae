"""Two small images bundled for a first try, served by the worker when samples are on.

``pepe.png`` (an EVM contract address and "$PEPE") and ``bonk.jpg`` (a Solana mint address).
With ``OCRSTREAM_SERVE_SAMPLES`` (``ocrstream run`` turns it on), the worker serves them at
``/samples/NAME`` and reads a post's image URL that points there straight from the package:
the tour needs no external host and no private-network exception, and the fetcher's refusal
of loopback addresses stays as it is for every other URL.
"""

from __future__ import annotations

from importlib import resources

from yarl import URL

from app.settings import Settings

NAMES = ("pepe.png", "bonk.jpg")
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def sample_bytes(name: str) -> bytes | None:
    """Return a bundled sample's bytes, or None when there is no sample by that name."""
    if name not in NAMES:
        return None
    return resources.files(__package__).joinpath(name).read_bytes()


def sample_url(settings: Settings, name: str) -> str:
    """Return the URL the worker serves a sample at (as a post's image URL)."""
    return f"http://127.0.0.1:{settings.web_port}/samples/{name}"


def local_sample(url: str, settings: Settings) -> bytes | None:
    """Return the sample a URL names when it is this worker's own /samples/ URL, else None."""
    if not settings.serve_samples:
        return None
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return None
    if parsed.scheme != "http" or parsed.host not in _LOOPBACK_NAMES:
        return None
    if parsed.port != settings.web_port or not parsed.path.startswith("/samples/"):
        return None
    return sample_bytes(parsed.path.removeprefix("/samples/"))
