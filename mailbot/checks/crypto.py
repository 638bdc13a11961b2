"""Recognise S/MIME and OpenPGP objects by their bytes: detached signatures and unreadable content.

libmagic knows armored OpenPGP but sees DER PKCS#7 as plain octets, so the CMS content type
OID at the head of the DER ContentInfo decides. A declared signature type alone proves
nothing (an executable can claim to be smime.p7s); the content must be a signature too.
"""

from __future__ import annotations

from mailbot.mail import Part

# DER encodings of the CMS content type OIDs (RFC 5652, RFC 5083).
_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_ENVELOPED_DATA = bytes.fromhex("06092a864886f70d010703")
_AUTH_ENVELOPED_DATA = bytes.fromhex("060b2a864886f70d0109100117")
_CONTENT_INFO_HEAD = 24  # SEQUENCE header (at most 6 bytes) + OID: the OID sits in here

PGP_SIGNATURE_TYPES = frozenset({"application/pgp-signature", "application/pgp-keys"})
PKCS7_SIGNATURE_DECLARED = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
PGP_ENCRYPTED = "application/pgp-encrypted"
PGP_MESSAGE_ARMOR = "-----BEGIN PGP MESSAGE-----"


def _cms_has(payload: bytes, oid: bytes) -> bool:
    return payload[:1] == b"\x30" and oid in payload[:_CONTENT_INFO_HEAD]


def is_signature(part: Part) -> bool:
    """A detached signature or a key: proof about the mail, not a file for the case."""
    if part.detected_type in PGP_SIGNATURE_TYPES:
        return True
    return part.declared_type in PKCS7_SIGNATURE_DECLARED and _cms_has(part.payload, _SIGNED_DATA)


def is_unreadable(part: Part) -> bool:
    """Encrypted (PGP, S/MIME enveloped) or opaque-signed S/MIME content we cannot look into."""
    if part.detected_type == PGP_ENCRYPTED:
        return True
    if is_signature(part):
        return False
    return any(_cms_has(part.payload, oid) for oid in (_ENVELOPED_DATA, _AUTH_ENVELOPED_DATA, _SIGNED_DATA))
