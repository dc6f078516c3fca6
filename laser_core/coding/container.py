"""The ``.lsr`` file: compressed images that only the model and priors that wrote them decode.

Layout, little-endian::

    magic        4 bytes   b"LASR"
    version      u16       1: per-image payloads under the counted priors (entropy.py)
                           2: one stream for the file under a trained prior (prior_coder.py)
    model        16 bytes  identity of the run's recipe and weights (identity.model_identity)
    priors       16 bytes  identity of the priors file (1) or trained prior (2) coded under
    channels     u8        image channels (1 or 3)
    count        u16       number of images, then per image:
      height, width            u32 each, the image size as given
      grid height, grid width  u32 each, latent positions of one tile (tiles.py); the model's
                               tile side and the image size give the number of tiles
      length                   u32, then ``length`` bytes of range-coded payload (version 1)
    length       u32       then ``length`` bytes: the stream of every image (version 2 only)
    crc32        u32       of every byte before it

Every version keeps the magic first and the CRC last, so a reader checks both before it
trusts the version. A truncated or corrupted file fails the CRC (or the layout) and is refused;
it never decodes into a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from laser_core.coding.identity import IDENTITY_BYTES
from laser_core.errors import LaserError

MAGIC = b"LASR"
VERSIONS = (1, 2)
MAX_IMAGES = 2**16 - 1  # the count is a u16
_HEADER = struct.Struct(f"<4sH{IDENTITY_BYTES}s{IDENTITY_BYTES}sBH")
_IMAGE = struct.Struct("<5I")
_STREAM = struct.Struct("<I")
_CRC = struct.Struct("<I")


@dataclass
class CodedImage:
    """One image's size (height, width), the latent grid (height, width) of each of its tiles
    and its payload."""

    size: tuple[int, int]
    grid: tuple[int, int]
    payload: bytes


@dataclass
class Container:
    """Images coded one payload each (version 1), or all in one ``stream`` (version 2, whose
    images' payloads are empty)."""

    model_id: bytes
    priors_id: bytes
    channels: int
    images: list[CodedImage]
    stream: bytes | None = None

    @property
    def version(self) -> int:
        return 1 if self.stream is None else 2


def pack(container: Container) -> bytes:
    if len(container.images) > MAX_IMAGES:
        raise LaserError(f"a .lsr file holds at most {MAX_IMAGES} images; split them up")
    parts = [
        _HEADER.pack(
            MAGIC,
            container.version,
            container.model_id,
            container.priors_id,
            container.channels,
            len(container.images),
        )
    ]
    for image in container.images:
        parts.append(_IMAGE.pack(*image.size, *image.grid, len(image.payload)))
        parts.append(image.payload)
    if container.stream is not None:
        parts += [_STREAM.pack(len(container.stream)), container.stream]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def unpack(data: bytes, source: str) -> Container:
    """Parse and verify a container; ``source`` names it in errors."""
    if len(data) < _HEADER.size + _CRC.size or data[: len(MAGIC)] != MAGIC:
        raise LaserError(f"{source} is not a LASER compressed file (no {MAGIC!r} header)")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise LaserError(f"{source} is corrupted or truncated (checksum mismatch)")
    _, version, model_id, priors_id, channels, count = _HEADER.unpack_from(data)
    if version not in VERSIONS:
        raise LaserError(
            f"{source} is format version {version}; this LASER reads versions "
            f"{', '.join(map(str, VERSIONS))}"
        )
    images, offset = [], _HEADER.size
    try:
        for _ in range(count):
            height, width, grid_height, grid_width, length = _IMAGE.unpack_from(body, offset)
            offset += _IMAGE.size
            if offset + length > len(body):
                raise struct.error("payload runs past the end")
            images.append(
                CodedImage(
                    (height, width), (grid_height, grid_width), body[offset : offset + length]
                )
            )
            offset += length
        stream = None
        if version == 2:
            (length,) = _STREAM.unpack_from(body, offset)
            offset += _STREAM.size
            if offset + length > len(body):
                raise struct.error("the stream runs past the end")
            stream, offset = body[offset : offset + length], offset + length
    except struct.error:
        raise LaserError(f"{source} is corrupted (its image table is inconsistent)") from None
    if offset != len(body):
        raise LaserError(f"{source} is corrupted ({len(body) - offset} stray bytes)")
    return Container(model_id, priors_id, channels, images, stream)
