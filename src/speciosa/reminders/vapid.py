"""VAPID keys for Web Push: a P-256 key pair. The private key goes in
``SPECIOSA_VAPID_PRIVATE_KEY`` (base64url of the raw 32-byte key, as pywebpush takes it), the
public key in ``SPECIOSA_VAPID_PUBLIC_KEY`` (base64url of the uncompressed point: the
``applicationServerKey`` browsers subscribe with). ``speciosa reminders vapid-keys`` prints a
new pair."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_keys() -> tuple[str, str]:
    """A new (private, public) pair, both base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return _b64url(private), _b64url(public)


def public_key_of(private_b64url: str) -> str:
    """The public key (base64url, uncompressed point) that belongs to a private one."""
    from py_vapid import Vapid

    vapid = Vapid.from_string(private_b64url)
    return _b64url(vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint))
