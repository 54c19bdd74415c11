"""Signatures (constant-time) and AES message crypto on top of wechatpy's primitives."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import socket
import struct

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.crypto.base import WeChatCipher


class BadMessage(ValueError):
    """Input that is not a well-formed WeChat message (answered 400)."""


class BadSignature(ValueError):
    """A signature that does not check (answered 403)."""


def sign(*parts: str) -> str:
    """WeChat's SHA1 over the sorted parts."""
    return hashlib.sha1("".join(sorted(str(p) for p in parts)).encode("utf-8")).hexdigest()


def check(expected_parts: tuple, signature: str | None) -> None:
    """Raise BadSignature unless `signature` matches, compared in constant time."""
    if not signature or not hmac.compare_digest(sign(*expected_parts), signature.lower()):
        raise BadSignature("signature mismatch")


def _aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def decrypt(encrypt: str, keys: list[str], appid: str) -> str:
    """Decrypt a safe-mode `Encrypt` value, trying the current key then the previous one."""
    last_error: Exception = BadMessage("no key")
    for key in keys:
        try:
            return _decrypt_with(encrypt, _aes_key(key), appid)
        except BadMessage as exc:
            last_error = exc
    raise last_error


def _decrypt_with(encrypt: str, key: bytes, appid: str) -> str:
    try:
        raw = base64.b64decode(encrypt, validate=True)
    except (ValueError, TypeError) as exc:
        raise BadMessage("Encrypt is not base64") from exc
    if not raw or len(raw) % 16:
        raise BadMessage("ciphertext length is not a multiple of the AES block")
    plain = WeChatCipher(key).decrypt(raw)
    pad = plain[-1]
    # WeChat pads PKCS#7 to 32-byte blocks; a wrong key shows up here as bad padding.
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        raise BadMessage("bad padding")
    content = plain[16:-pad]
    if len(content) < 4:
        raise BadMessage("truncated plaintext")
    length = socket.ntohl(struct.unpack("I", content[:4])[0])
    if length > len(content) - 4:
        raise BadMessage("length field exceeds plaintext")
    try:
        xml, from_appid = content[4:4 + length].decode(), content[4 + length:].decode()
    except UnicodeDecodeError as exc:
        raise BadMessage("plaintext is not UTF-8") from exc
    if not hmac.compare_digest(from_appid.encode(), appid.encode()):
        raise BadMessage("AppId inside the ciphertext does not match")
    return xml


def encrypt_reply(xml: str, token: str, key: str, appid: str, nonce: str, timestamp: str) -> str:
    """Encrypt and sign a reply the way WeChat expects in safe mode."""
    return _crypto(token, key, appid).encrypt_message(xml, nonce, timestamp)


@functools.lru_cache(maxsize=4)
def _crypto(token: str, key: str, appid: str) -> WeChatCrypto:
    """wechatpy's crypto for one account, built once (it decodes the key on creation)."""
    return WeChatCrypto(token, key, appid)


def encrypt_body(xml: str, key: str, appid: str) -> str:
    """The base64 `Encrypt` value for a plaintext (used by the simulator and tests)."""
    return PrpCrypto(_aes_key(key)).encrypt(xml, appid).decode()
