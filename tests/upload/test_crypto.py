"""AES-256-CBC against a published test vector, PKCS#7 padding, and the digests."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spapi_services._crypto import (
    EncryptionKeyError,
    decrypt_cbc,
    digests,
    encrypt_cbc,
    key_and_iv,
)
from spapi_services.models.documents import EncryptionDetails
from spapi_services.models.enums import EncryptionStandard

# NIST SP 800-38A, appendix F.2.5 (CBC-AES256.Encrypt).
NIST_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
NIST_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NIST_PLAINTEXT = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
NIST_CIPHERTEXT = bytes.fromhex(
    "f58c4c04d6e5f1ba779eabfb5f7bfbd6"
    "9cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461"
    "b2eb05e2c39be9fcda6c19078c6a9d1b"
)


def _details(key: bytes, iv: bytes, standard: str = "AES") -> EncryptionDetails:
    return EncryptionDetails(
        standard=EncryptionStandard(standard),
        initialization_vector=base64.b64encode(iv).decode(),
        key=base64.b64encode(key).decode(),
    )


def _raw_decrypt(ciphertext: bytes, key: bytes, iv: bytes) -> bytes:
    """CBC decryption without removing the padding, to look at it."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def test_nist_vector_blocks_then_one_block_of_padding() -> None:
    ciphertext = encrypt_cbc(NIST_PLAINTEXT, NIST_KEY, NIST_IV)
    # Whole blocks in: the published ciphertext, then a full block of PKCS#7 padding.
    assert len(ciphertext) == len(NIST_PLAINTEXT) + 16
    assert ciphertext[:64] == NIST_CIPHERTEXT
    # That last block is AES(key, previous ciphertext block XOR sixteen 0x10 bytes).
    chained = bytes(a ^ 0x10 for a in NIST_CIPHERTEXT[-16:])
    ecb = Cipher(algorithms.AES(NIST_KEY), modes.ECB()).encryptor()
    assert ciphertext[64:] == ecb.update(chained) + ecb.finalize()
    # The same block as other AES-CBC/PKCS#7 implementations publish for this vector.
    assert ciphertext[64:].hex() == "3f461796d6b0d6b2e0c2a72b4d80e644"


def test_nist_vector_decrypts() -> None:
    assert decrypt_cbc(encrypt_cbc(NIST_PLAINTEXT, NIST_KEY, NIST_IV), NIST_KEY, NIST_IV) == (
        NIST_PLAINTEXT
    )
    assert _raw_decrypt(NIST_CIPHERTEXT, NIST_KEY, NIST_IV) == NIST_PLAINTEXT


@pytest.mark.parametrize("size", [1, 2, 15, 16, 17, 31, 32, 33, 1000])
def test_pkcs7_padding_length_and_bytes(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256 + 1)
    plaintext = plaintext[:size]
    ciphertext = encrypt_cbc(plaintext, NIST_KEY, NIST_IV)
    pad = 16 - size % 16  # 1..16: a whole block when the size is a multiple of 16
    assert len(ciphertext) == size + pad
    padded = _raw_decrypt(ciphertext, NIST_KEY, NIST_IV)
    assert padded == plaintext + bytes([pad]) * pad
    assert decrypt_cbc(ciphertext, NIST_KEY, NIST_IV) == plaintext


def test_round_trip_of_five_mebibytes() -> None:
    plaintext = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32)
    key, iv = bytes(range(32)), bytes(range(16))
    assert decrypt_cbc(encrypt_cbc(plaintext, key, iv), key, iv) == plaintext


def test_wrong_key_does_not_decrypt_to_the_plaintext() -> None:
    ciphertext = encrypt_cbc(b"%PDF-1.7 proof of work", NIST_KEY, NIST_IV)
    other = bytes(32)
    try:
        result = decrypt_cbc(ciphertext, other, NIST_IV)
    except ValueError:
        return  # bad padding: the usual outcome
    assert result != b"%PDF-1.7 proof of work"


def test_decrypt_refuses_partial_blocks() -> None:
    with pytest.raises(ValueError, match="whole number of AES blocks"):
        decrypt_cbc(b"x" * 17, NIST_KEY, NIST_IV)


def test_key_and_iv_decode_base64() -> None:
    assert key_and_iv(_details(NIST_KEY, NIST_IV)) == (NIST_KEY, NIST_IV)


@pytest.mark.parametrize(
    ("key", "iv", "message"),
    [
        (bytes(16), bytes(16), "key decodes to 16 bytes; AES-256 needs 32"),
        (bytes(24), bytes(16), "key decodes to 24 bytes; AES-256 needs 32"),
        (bytes(32), bytes(8), "initialization vector decodes to 8 bytes; CBC needs 16"),
        (bytes(32), bytes(32), "initialization vector decodes to 32 bytes; CBC needs 16"),
    ],
)
def test_key_and_iv_lengths_are_checked(key: bytes, iv: bytes, message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message) as caught:
        key_and_iv(_details(key, iv))
    assert base64.b64encode(key).decode() not in str(caught.value)


def test_key_that_is_not_base64_is_refused_without_echoing_it() -> None:
    details = EncryptionDetails(
        standard=EncryptionStandard.AES,
        initialization_vector=base64.b64encode(bytes(16)).decode(),
        key="not*base64*at*all!secretish",
    )
    with pytest.raises(EncryptionKeyError, match="key is not valid base64") as caught:
        key_and_iv(details)
    assert "secretish" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_unknown_standard_is_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="'AES-GCM'"):
        key_and_iv(_details(NIST_KEY, NIST_IV, standard="AES-GCM"))


def test_digests_are_base64_of_the_raw_digest() -> None:
    sums = digests(b"abc")
    # Well-known digests of "abc" (RFC 1321, FIPS 180-2), in base64.
    assert sums.md5 == base64.b64encode(bytes.fromhex("900150983cd24fb0d6963f7d28e17f72")).decode()
    assert (
        sums.sha256
        == base64.b64encode(
            bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        ).decode()
    )
    assert len(sums.md5) == 24
    assert sums.md5.endswith("==")
    assert len(sums.sha256) == 44
    assert sums.length == 3
