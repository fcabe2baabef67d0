"""Digests and AES-256-CBC for fulfilment documents.

Amazon hands out a fresh key and IV with every upload destination and expects the document
to be encrypted with them before it is stored.  Everything here is a pure function over
bytes; nothing logs, and no error message ever contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import attrs
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .models.documents import EncryptionDetails
from .models.enums import EncryptionStandard

__all__ = [
    "AES_BLOCK_BYTES",
    "AES_KEY_BYTES",
    "Digests",
    "EncryptionKeyError",
    "decrypt_cbc",
    "digests",
    "encrypt_cbc",
    "key_and_iv",
]

#: AES-256 keys are 32 bytes.
AES_KEY_BYTES = 32
#: The AES block, and so the CBC IV, is 16 bytes.
AES_BLOCK_BYTES = 16


class EncryptionKeyError(ValueError):
    """The encryption details of an upload destination cannot be used."""


@attrs.frozen(kw_only=True)
class Digests:
    """The base64 MD5 and SHA-256 of a document, and its length in bytes."""

    md5: str
    sha256: str
    length: int


def digests(data: bytes) -> Digests:
    """Base64 (not hex) MD5 and SHA-256 of ``data``, as the API wants them."""
    # MD5 is a checksum here, not a security measure: say so for FIPS-mode builds.
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    sha256 = hashlib.sha256(data).digest()
    return Digests(
        md5=base64.b64encode(md5).decode("ascii"),
        sha256=base64.b64encode(sha256).decode("ascii"),
        length=len(data),
    )


def key_and_iv(details: EncryptionDetails) -> tuple[bytes, bytes]:
    """The raw AES-256 key and CBC IV from a destination's base64 encryption details.

    Raises :class:`EncryptionKeyError` (a ``ValueError``) when the standard is not AES,
    or when either value is not base64 or has the wrong length.  The message gives the
    lengths found, never the values.
    """
    if details.standard != EncryptionStandard.AES:
        raise EncryptionKeyError(
            f"unsupported encryption standard {details.standard.value!r}; only AES is known"
        )
    key = _decode("key", details.key)
    iv = _decode("initialization vector", details.initialization_vector)
    if len(key) != AES_KEY_BYTES:
        raise EncryptionKeyError(
            f"the encryption key decodes to {len(key)} bytes; AES-256 needs {AES_KEY_BYTES}"
        )
    if len(iv) != AES_BLOCK_BYTES:
        raise EncryptionKeyError(
            f"the initialization vector decodes to {len(iv)} bytes; CBC needs {AES_BLOCK_BYTES}"
        )
    return key, iv


def _decode(what: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(f"the {what} is not valid base64") from None


def encrypt_cbc(plaintext: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-CBC encryption with PKCS#7 padding (always adds 1 to 16 bytes)."""
    padder = padding.PKCS7(AES_BLOCK_BYTES * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_cbc(ciphertext: bytes, key: bytes, iv: bytes) -> bytes:
    """The inverse of :func:`encrypt_cbc`; ``ValueError`` if the padding is not valid."""
    if not ciphertext or len(ciphertext) % AES_BLOCK_BYTES:
        raise ValueError(
            f"ciphertext of {len(ciphertext)} bytes is not a whole number of AES blocks"
        )
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(AES_BLOCK_BYTES * 8).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
