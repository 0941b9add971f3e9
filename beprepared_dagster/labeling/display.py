"""Display-size copies for the labeling app: long edge at most 1600 px (960 for HumanRank's pairs), EXIF orientation applied, JPEG (or
WebP when the image has transparency), generated once per object and kept under `cache/display/`.

Generation uses at most half the cores, so a flood of image requests cannot starve label saves.
An image a browser can show as it is (JPEG/PNG/WebP/GIF, small enough, upright) is served from the object
store itself; a zero-byte-ish marker file records that decision so it is made once. Files are written to a
temp name and renamed, so concurrent requests (threads or processes) never see half a file; a per-object lock
keeps one process from generating the same copy twice.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BadImage
from beprepared_dagster.nodes import imaging
from beprepared_dagster.store.objects import ObjectStore, is_object_id

log = logging.getLogger(__name__)

DISPLAY_EDGE = 1600
PAIR_EDGE = 960  # HumanRank shows two images side by side: each needs about half the pixels
QUALITY = 85
_SERVE_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
_MEDIA = {".jpg": "image/jpeg", ".webp": "image/webp"}


@dataclass(frozen=True)
class DisplayFile:
    path: Path
    media_type: str


class DisplayCache:
    """Display copies of the objects of one object store, under `root` (the workspace's `cache/display`)."""

    def __init__(self, objects: ObjectStore, root: Path, edge: int = DISPLAY_EDGE, slots: Any = None) -> None:
        self.objects, self.root, self.edge = objects, Path(root), edge
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._known: dict[str, DisplayFile] = {}
        # Copies to make ahead of the browser: the pages' next images first (urgent), then the prefetcher's.
        self._wanted: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()  # in `_wanted`, or taken from it and being made
        self._making: set[str] = set()  # taken from `_wanted` by a warmer, not made yet
        self._wake = threading.Condition()
        # Making copies is CPU-bound: at most half the cores, so saving labels and serving stay responsive.
        self.workers = max(1, (os.cpu_count() or 2) // 2)
        self._slots = slots or threading.BoundedSemaphore(self.workers)  # shared by a workspace's caches
        self._warmers: list[threading.Thread] = []

    def get(self, object_id: str) -> DisplayFile | None:
        """The file to send for `object_id`, generating it on first use; None when the object is unknown.
        Raises ValueError for anything but a 64-hex id and BadImage for bytes that cannot be shown."""
        if not is_object_id(object_id):
            raise ValueError(f"not an object id: {object_id[:80]!r}")
        known = self._known.get(object_id)
        if known is not None:
            return known
        with self._lock_for(object_id):
            found = self._cached(object_id)
            if found is None:
                if not self.objects.has(object_id):
                    return None
                with self._slots:
                    found = self._generate(object_id)
        self._known[object_id] = found
        return found

    def warm(self, object_ids: list[str], urgent: bool = False) -> int:
        """Generate copies in background threads (ahead of the browser asking); never blocks. `urgent`: ahead
        of everything queued (what a page shows next). Returns how many were queued."""
        fresh = list(dict.fromkeys(o for o in object_ids if o not in self._known and is_object_id(o)))
        with self._wake:
            if urgent:
                queued = 0
                for object_id in reversed(fresh):
                    if object_id in self._making:
                        continue  # a warmer is making it now
                    if object_id in self._queued:
                        self._wanted.remove(object_id)  # to the front
                    self._wanted.appendleft(object_id)
                    self._queued.add(object_id)
                    queued += 1
            else:
                queued = 0
                for object_id in fresh:
                    if object_id not in self._queued:
                        self._wanted.append(object_id)
                        self._queued.add(object_id)
                        queued += 1
            self._warmers = [t for t in self._warmers if t.is_alive()]
            while self._wanted and len(self._warmers) < self.workers:
                thread = threading.Thread(target=self._warm_loop, name="display-warmer", daemon=True)
                self._warmers.append(thread)
                thread.start()
            self._wake.notify_all()
        return queued

    def pending(self) -> int:
        """Copies queued and not made yet."""
        with self._wake:
            return len(self._wanted)

    def _warm_loop(self) -> None:
        while True:
            with self._wake:
                if not self._wanted and not self._wake.wait_for(lambda: bool(self._wanted), timeout=5):
                    self._warmers = [t for t in self._warmers if t is not threading.current_thread()]
                    return
                object_id = self._wanted.popleft()
                self._making.add(object_id)
            try:
                self.get(object_id)
            except (BadImage, OSError, ValueError) as exc:
                log.debug("display copy of %s failed: %s", object_id, exc)
            finally:
                with self._wake:
                    self._making.discard(object_id)
                    self._queued.discard(object_id)

    def _lock_for(self, object_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(object_id, threading.Lock())

    def _base(self, object_id: str) -> Path:
        return self.root / object_id[:2] / object_id

    def _cached(self, object_id: str) -> DisplayFile | None:
        base = self._base(object_id)
        for suffix, media in _MEDIA.items():
            path = base.with_suffix(suffix)
            if path.is_file():
                return DisplayFile(path, media)
        marker = base.with_suffix(".original")
        if marker.is_file():
            media = _SERVE_AS_IS.get(marker.read_text().strip())
            if media:
                return DisplayFile(self.objects.path(object_id), media)
        return None

    def _generate(self, object_id: str) -> DisplayFile:
        data = self.objects.read(object_id)
        image = imaging.open_image(data, object_id)
        base = self._base(object_id)
        fmt = "JPEG" if image.format == "MPO" else image.format
        if _shows_as_is(image, fmt, self.edge):
            _write_atomic(base.with_suffix(".original"), fmt.encode())
            return DisplayFile(self.objects.path(object_id), _SERVE_AS_IS[fmt])
        body, suffix = render(image, self.edge)
        path = base.with_suffix(suffix)
        _write_atomic(path, body)
        return DisplayFile(path, _MEDIA[suffix])


def _shows_as_is(image: Any, fmt: str, edge: int) -> bool:
    """A browser shows it right as it is: a web format, small enough, upright, 8-bit colour."""
    return (
        fmt in _SERVE_AS_IS
        and max(image.size) <= edge
        and imaging.orientation(image) == 1
        and image.mode not in ("CMYK", "I", "I;16", "I;16B", "I;16L", "F")
    )


def render(image: Any, edge: int = DISPLAY_EDGE) -> tuple[bytes, str]:
    """Encode an opened image for display: upright, long edge ≤ `edge`, JPEG or (with alpha) WebP."""
    from PIL import ImageOps

    if image.format in ("JPEG", "MPO"):
        scale = max(image.size) / edge
        if scale > 1:  # DCT scaling: decode at 1/2, 1/4 or 1/8 when that still leaves ≥ edge pixels
            image.draft("RGB", (int(image.width / scale), int(image.height / scale)))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(f"cannot decode for display: {exc}") from None
    image = _displayable_mode(image)
    image.thumbnail((edge, edge))
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "WEBP", quality=QUALITY, method=2)
        return out.getvalue(), ".webp"
    image.save(out, "JPEG", quality=QUALITY)
    return out.getvalue(), ".jpg"


def _displayable_mode(image: Any) -> Any:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda v: v / 256).convert("L") if mode != "I" else image.convert("L")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _write_atomic(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
