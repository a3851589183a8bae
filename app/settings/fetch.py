"""How images are downloaded: sizes, timeouts, per-host slots, and which addresses."""

from __future__ import annotations

from pydantic import Field

from app.settings.base import SettingsBase

# Why 10 MB: the product's documented cap for `imageUrl` downloads and `image` bodies.
MAX_IMAGE_BYTES_DEFAULT = 10 * 1024 * 1024


class FetchSettings(SettingsBase):
    """Image downloads: bounds, time, hosts allowed, and the bundled samples."""

    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES_DEFAULT,
        ge=1,
        description="Largest image download (10 MB), enforced while streaming.",
    )
    fetch_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to connect to an image host (a read may stall twice as long).",
    )
    fetch_total_timeout_s: float = Field(
        default=20.0, gt=0, description="Seconds for a whole image download, redirects included."
    )
    # Why 8: a slow host's downloads then hold a quarter of the default 32 agent slots, while a
    # fast CDN (most images come from a few) still gets 8 at once, ample for what OCR reads.
    fetch_per_host: int = Field(
        default=8,
        ge=1,
        description=(
            "Image downloads in flight to one host per worker; a download that waits longer than "
            "`OCRSTREAM_FETCH_TOTAL_TIMEOUT_S` for a slot fails as `timeout`."
        ),
    )
    fetch_max_redirects: int = Field(
        default=5, ge=0, description="Redirects followed per image; every hop is checked again."
    )
    fetch_allow_private: bool = Field(
        default=False,
        description=(
            "Allow image hosts on loopback, private, link-local and metadata addresses (tests "
            "only)."
        ),
    )
    fetch_allowed_networks: str = Field(
        default="",
        description=(
            "Comma-separated CIDR networks fetched although not public, e.g. an internal image "
            "host `10.8.0.0/16`; every other private address stays refused."
        ),
    )
    serve_samples: bool = Field(
        default=False,
        description=(
            "Serve the two bundled sample images at `/samples/NAME` and read a post's image URL "
            "that points there from the package, without a download (for a first try; "
            "`ocrstream run` turns it on)."
        ),
    )
