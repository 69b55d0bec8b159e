"""Secrets kept encrypted at rest, for the secrets Cairn must read back (a webhook's signing secret,
a TOTP seed): hashing would not do. Fernet (AES-128-CBC + HMAC-SHA256) under a key derived by
HKDF-SHA256 from the configured key material, with a salt per purpose so that one purpose's
ciphertext never opens with another's key."""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@functools.lru_cache(maxsize=16)
def _fernet(purpose: str, key_material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=f"cairn-{purpose}".encode(), info=b"v1").derive(
        key_material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret: str, key_material: str, *, purpose: str) -> str:
    """``secret`` encrypted under the key of ``purpose`` (e.g. ``webhook-secrets``)."""
    return _fernet(purpose, key_material).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, key_material: str, *, purpose: str) -> str:
    """The secret ``encrypt_secret`` wrote; ``ValueError`` when the key material has changed."""
    try:
        return _fernet(purpose, key_material).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(f"a stored secret ({purpose}) cannot be decrypted with the configured key") from exc
