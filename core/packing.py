"""Big broker bodies travel gzip-compressed: packed before publishing, unpacked a chunk at a time when read."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

from core.errors import ContractError

PACK_OVER = 1 << 20  # bytes: a body larger than this is published packed
GZIP_MAGIC = b"\x1f\x8b"  # a packed body says so itself: JSON never starts with these bytes
STEP_BYTES = 8 << 20  # unpacked bytes per step (about 10 ms)
ENCODING = "gzip"  # the AMQP content_encoding of a packed body (shown by the broker's tools; reading goes by the bytes)


def wanted(body: bytes) -> bool:
    """Whether a body goes packed: larger than `PACK_OVER` and not packed already (a stored dead letter kept as it
    came is never packed twice)."""
    return len(body) > PACK_OVER and not is_packed(body)


def pack(body: bytes) -> bytes:
    """The body to publish: gzip at level 1 when it is `wanted`, else itself.

    A 100,000-row feed's `report.parsed.v1` (88 MB of JSON, its CSV header repeated in every row's evidence)
    becomes 3.5 MB in 0.2 s, so the broker writes it to its quorum log in milliseconds, not the second during
    which every message queued behind it waited. zlib lets go of the GIL while it works: run it in a thread."""
    return gzip.compress(body, compresslevel=1, mtime=0) if wanted(body) else body


def is_packed(body: bytes) -> bool:
    """Whether the body is gzip-compressed (`pack`)."""
    return body[:2] == GZIP_MAGIC


def chunks(body: bytes) -> Iterator[bytes]:
    """A packed body's bytes as published, `STEP_BYTES` at a time (about 10 ms each: a reader may yield between
    them); a body that is not packed in one chunk. ContractError when a packed body is corrupt or cut short."""
    if not is_packed(body):
        yield body
        return
    inflate = zlib.decompressobj(wbits=31)
    rest = body
    try:
        while rest:
            yield inflate.decompress(rest, STEP_BYTES)
            rest = inflate.unconsumed_tail
        yield inflate.flush()
    except zlib.error as exc:
        raise ContractError(f"a packed body that does not unpack: {exc}") from exc
    if not inflate.eof or inflate.unused_data:
        raise ContractError("a packed body cut short or followed by other bytes")


def unpacked(body: bytes) -> bytes:
    """The body as published, whole."""
    return body if not is_packed(body) else b"".join(chunks(body))
