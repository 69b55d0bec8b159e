"""Attachment bytes: the content type is read from the bytes, and files live under the instance path.

The sniffer knows the formats people attach to tickets (screenshots, PDFs, logs, archives, office
files). A client's declared type is only a hint: when it disagrees with what the bytes are, or the bytes
are nothing we recognise, the file is stored as ``application/octet-stream``, so a browser never renders
an HTML page uploaded as "image/png".
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zipfile
from io import BytesIO
from pathlib import Path

from flask import current_app

from cairn.config import setting

OCTET_STREAM = "application/octet-stream"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# (offset, magic bytes, type), checked in order.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
)
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# Declared types a client may use for a sniffed one (its own name, plus the aliases in use).
_COMPATIBLE: dict[str, set[str]] = {
    "image/jpeg": {"image/jpg", "image/pjpeg"},
    "application/gzip": {"application/x-gzip", "application/x-tar", "application/x-gtar"},
    "application/zip": {"application/x-zip-compressed"},
    "application/x-ole-storage": {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"},
    "image/bmp": {"image/x-ms-bmp"},
}
_TEXT_DECLARED = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")


def sniff(data: bytes) -> str:
    """The content type the bytes are, or application/octet-stream."""
    for offset, magic, content_type in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"PK\x03\x04":
        return _zip_kind(data)
    if _looks_like_text(data):
        return "text/plain"
    return OCTET_STREAM


def _zip_kind(data: bytes) -> str:
    try:
        names = zipfile.ZipFile(BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return OCTET_STREAM
    for prefix, content_type in _OOXML.items():
        if any(name.startswith(prefix) for name in names):
            return content_type
    return "application/zip"


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start < len(sample) - 4:
            return False
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls <= len(sample) // 100


def stored_type(data: bytes, declared: str | None) -> str:
    """The type to store and serve: what the bytes are, unless the client claimed something else."""
    sniffed = sniff(data)
    if sniffed == OCTET_STREAM:
        return OCTET_STREAM
    declared = (declared or "").split(";")[0].strip().lower()
    if not declared or declared in (OCTET_STREAM, sniffed):
        return sniffed
    if sniffed == "text/plain" and declared.startswith(_TEXT_DECLARED):
        return sniffed
    if declared in _COMPATIBLE.get(sniffed, set()):
        return sniffed
    if sniffed.startswith("application/vnd.openxmlformats") and declared == "application/zip":
        return sniffed
    return OCTET_STREAM


def max_bytes() -> int:
    return int(setting("CAIRN_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def root() -> Path:
    configured = setting("CAIRN_ATTACHMENT_PATH")
    return Path(configured) if configured else Path(current_app.instance_path) / "attachments"


def read_capped(stream, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``stream``; None when there are more."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


def save(data: bytes) -> tuple[str, str]:
    """Write the bytes under a fresh key, atomically; returns (storage key, sha256)."""
    key = f"{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"
    path = root() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return key, hashlib.sha256(data).hexdigest()


def path_of(key: str) -> Path:
    base = root().resolve()
    path = (base / key).resolve()
    if base not in path.parents:
        raise ValueError("storage key escapes the attachment directory")
    return path


def send(attachment):
    """The download answer of a stored attachment (the API's and the web desk's): always a download,
    never rendered by the browser (Content-Disposition attachment, nosniff, a CSP that runs nothing),
    with the type read from its bytes. NotFound when its file is gone."""
    from flask import send_file

    from cairn.errors import NotFound

    try:
        path = path_of(attachment.storage_key)
    except ValueError:
        raise NotFound("The attachment's file is missing.") from None
    if not path.is_file():
        raise NotFound("The attachment's file is missing.")
    response = send_file(path, mimetype=attachment.content_type, as_attachment=True, download_name=attachment.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def discard(key: str) -> None:
    try:
        path_of(key).unlink()
    except (FileNotFoundError, ValueError):
        pass
