"""What OCR needs while the worker runs: the warmed process pool and the HTTP session."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

import aiohttp
from mode import Service

from app.fetch import FetchLimits, HostSlots, fetch_image, limits_from, new_session
from app.metrics import metrics
from app.ocr.admission import Lane, OcrAdmission
from app.ocr.cache import OcrCache, content_key, url_key
from app.ocr.config import engine_config, image_limits
from app.ocr.engine import OcrOutput
from app.ocr.pool import OcrPool
from app.ocr.similar import NearDuplicateIndex, lines_that_matter
from app.samples import local_sample
from app.settings import Settings

log = logging.getLogger(__name__)


class OcrRuntime(Service):
    """Starts and warms the OCR pool with the worker, and stops it with the worker."""

    def __init__(
        self, settings: Settings, keywords: Callable[[], Collection[str]] = frozenset
    ) -> None:
        super().__init__()
        self._settings = settings
        # Every key's keywords: a copy must read the same in each line holding one.
        self._keywords = keywords
        self.fetch_limits: FetchLimits = limits_from(settings)
        self._ready = asyncio.Event()
        self._pool = OcrPool(
            engine_config(settings),
            processes=settings.ocr_processes,
            limits=image_limits(settings),
        )
        self._session: aiohttp.ClientSession | None = None
        # The pipeline's images, by URL and bytes, and their copies (the near-duplicate index).
        self.cache = OcrCache(settings.ocr_cache_entries, settings.ocr_cache_ttl_s)
        # POST /ocr's, apart, each API key's own. Why apart: an answer from another caller's
        # input would tell a caller what others sent (a cached answer is instant), and one
        # caller's images must never seed what the pipeline reuses, nor take its room.
        self.http_cache = OcrCache(settings.ocr_cache_entries, settings.ocr_cache_ttl_s)
        self.similar: NearDuplicateIndex | None = None
        if settings.near_duplicates and settings.near_duplicate_entries > 0:
            self.similar = NearDuplicateIndex(
                settings.near_duplicate_entries, settings.ocr_cache_ttl_s
            )
        self.admission = OcrAdmission(
            settings.ocr_processes, settings.ocr_http_queue, settings.ocr_http_share
        )
        # Why wait no longer than a whole download may take: a job queued behind a host's
        # slow downloads fails like they do instead of holding its agent slot for longer.
        self.hosts = HostSlots(settings.fetch_per_host, settings.fetch_total_timeout_s)

    async def on_start(self) -> None:
        """Start the OCR processes and warm them before any image is read."""
        seconds = await self._pool.start()
        self._session = new_session(self.fetch_limits)
        self._ready.set()
        log.info(
            "OCR ready: %d process(es), each %s; warmed in %.1fs",
            self._settings.ocr_processes,
            self._pool.engine,
            seconds,
        )

    @property
    def engine(self) -> str:
        """Return how the OCR processes run their engine (runtime, precision, threads)."""
        return self._pool.engine

    async def on_stop(self) -> None:
        """Close the HTTP session and stop the OCR processes."""
        if self._session is not None:
            await self._session.close()
        self._pool.close()

    async def session(self) -> aiohttp.ClientSession:
        """Return the HTTP session for image downloads, once the runtime is ready."""
        await self._ready.wait()
        assert self._session is not None
        return self._session

    async def ocr(self, data: bytes, lane: Lane = "pipeline") -> OcrOutput:
        """Decode and OCR image bytes in the pool, once it is warm, in ``lane``'s turn.

        Raises OcrBusyError for the ``http`` lane when its queue is full.
        """
        await self._ready.wait()
        async with self.admission.slot(lane):
            return await self._pool.ocr(data)

    async def _read_new(self, data: bytes, lane: Lane) -> tuple[OcrOutput, bool]:
        """Return (output, was_similar): OCR new bytes, unless they are a known picture's copy."""
        if self.similar is None:
            return await self.ocr(data, lane), False
        await self._ready.wait()
        async with self.admission.slot(lane):
            known = self.similar.known()
            reading = await self._pool.read_unless_known(data, known.packed)
            output = reading.output
            if output is None:
                candidates = [known.ids[i] for i in reading.candidates]
                found = await self.similar.confirm(reading.fingerprint, candidates)
                if found is None:
                    # Near in hash only (e.g. the same template with another address): read it.
                    output = await self._pool.ocr(data)
                else:
                    # Why verify: the thumbnails cannot see a changed line of small or faint
                    # print; each line read again here must say what the original's said.
                    stored = found.fingerprint
                    texts = [text for text, _ in found.output.lines]
                    which = lines_that_matter(texts, self._keywords())
                    output = await self._pool.verify_or_read(
                        data, found.output, (stored.width, stored.height), which
                    )
                    if output is None:
                        self.similar.verified(found)
                        return found.output, True
                    self.similar.refused += 1
            self.similar.add(reading.fingerprint, output)
            return output, False

    def _cache_for(self, caller: str | None, key: str) -> tuple[OcrCache, str]:
        """Return the cache and key an image is looked up under: the pipeline's, or a caller's."""
        return (self.cache, key) if caller is None else (self.http_cache, f"{caller}/{key}")

    async def fetch(self, url: str) -> bytes:
        """Download an image (bounded size, time and downloads per host)."""
        sample = local_sample(url, self._settings)
        if sample is not None:  # the worker's own /samples/ URL: read from the package
            return sample
        return await fetch_image(await self.session(), url, self.fetch_limits, self.hosts)

    async def ocr_image(self, data: bytes, caller: str | None = None) -> tuple[OcrOutput, bool]:
        """Return (output, was_cached) for image bytes; identical bytes are read once.

        ``caller`` None: the pipeline's image; a copy of a picture it read already (re-encoded,
        resized) reuses that reading too, once each line reads the same in it (unless
        near-duplicates are turned off). Else the API key of a POST /ocr request: its own
        cache only, in the http lane, and never near-duplicates.
        """
        metrics.stage("ocr")
        similar = False

        async def read() -> OcrOutput:
            nonlocal similar
            if caller is not None:
                return await self.ocr(data, "http")
            output, similar = await self._read_new(data, "pipeline")
            return output

        cache, key = self._cache_for(caller, content_key(data))
        output, cached = await cache.get_or_compute(key, read)
        if cached:
            metrics.ocr_cache_hits.labels(by="bytes").inc()
        elif similar:
            metrics.ocr_cache_hits.labels(by="similar").inc()
        else:
            metrics.ocr_ms.observe_ms(output.elapsed_ms)
        return output, cached or similar

    async def ocr_url(
        self,
        url: str,
        caller: str | None = None,
        fetched: Callable[[bytes], None] | None = None,
    ) -> tuple[OcrOutput, bool]:
        """Return (output, was_cached) for an image URL; repeats by URL or bytes are not redone.

        ``caller`` as for ``ocr_image``. ``fetched`` is handed the image's bytes when they were
        downloaded (not when cached).
        """

        read_before = False

        async def fetch_and_read() -> OcrOutput:
            nonlocal read_before
            started = time.perf_counter()
            data = await self.fetch(url)
            metrics.fetch_ms.observe_ms((time.perf_counter() - started) * 1000)
            if fetched is not None:
                fetched(data)
            output, read_before = await self.ocr_image(data, caller)
            return output

        cache, key = self._cache_for(caller, url_key(url))
        output, cached = await cache.get_or_compute(key, fetch_and_read)
        if cached:
            metrics.ocr_cache_hits.labels(by="url").inc()
        return output, cached or read_before
