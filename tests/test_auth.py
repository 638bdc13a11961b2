"""Sender authentication (`mailbot.auth`): trusted Authentication-Results, DKIM verified here with
keys made in the test and handed to dkimpy's DNS lookup (no network), trusted IMAP accounts.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support import compose

from mailbot import auth, config
from mailbot.mail import Envelope
from mailbot.parse import parse

SMTP = Envelope("kunde@customer.test", ("service@example.com",), "smtp")


class Keys:
    """One signing key per domain, published through `dns` (dkimpy's dnsfunc) instead of DNS."""

    def __init__(self) -> None:
        self.private: dict[str, bytes] = {}
        self.published: dict[bytes, bytes] = {}

    def key(self, domain: str) -> bytes:
        if domain not in self.private:
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
            self.private[domain] = key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption())
            public = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
            self.published[f"mail._domainkey.{domain}.".encode()] = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
        return self.private[domain]

    def sign(self, raw: bytes, domain: str) -> bytes:
        header = dkim.sign(raw, b"mail", domain.encode(), self.key(domain),
                           include_headers=[b"from", b"to", b"subject", b"message-id"])
        return header + raw

    def dns(self, name: bytes, timeout: float = 5.0) -> bytes | None:
        return self.published.get(name)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


def settings(**sections: dict[str, Any]) -> config.Settings:
    data: dict[str, Any] = {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
                            "tokens": {"secret": "0123456789abcdef"},
                            "security": {"trusted_authserv_ids": ["mx.example.com"]}, **sections}
    return config.parse(data, Path("config.toml"))


def verdict(raw: bytes, keys: Keys, envelope: Envelope = SMTP, **sections: dict[str, Any]) -> tuple[str, str]:
    found = auth.verdict(raw, parse(raw), envelope, settings(**sections), keys.dns)
    return found.result, found.why


def test_dkim_of_the_from_domain_or_a_parent_passes(keys: Keys) -> None:
    assert verdict(keys.sign(compose(), "customer.test"), keys) == ("pass", "dkim=pass d=customer.test")
    sub = compose(sender="kunde@news.customer.test")
    assert verdict(keys.sign(sub, "customer.test"), keys)[0] == "pass"


def test_a_signature_of_another_domain_is_no_evidence(keys: Keys) -> None:
    assert verdict(keys.sign(compose(), "evil.test"), keys) == ("none", "no dkim signature of the from domain")
    # a child cannot sign for its parent, nor a look-alike for the real thing
    assert verdict(keys.sign(compose(sender="a@customer.test"), "x.customer.test"), keys)[0] == "none"
    assert verdict(keys.sign(compose(sender="a@customer.test"), "ercustomer.test"), keys)[0] == "none"


def test_a_broken_signature_of_the_from_domain_fails(keys: Keys) -> None:
    signed = keys.sign(compose(body="Bitte 10 EUR überweisen.\r\n"), "customer.test")
    tampered = signed.replace(b"10 EUR", b"9000 EUR")
    assert verdict(tampered, keys) == ("fail", "dkim=fail d=customer.test")
    # one good aligned signature is enough, whatever else is broken
    assert verdict(keys.sign(signed, "customer.test"), keys)[0] == "pass"


def test_no_key_or_no_dns_is_no_evidence(keys: Keys) -> None:
    signed = keys.sign(compose(sender="kunde@other.test"), "other.test")
    assert verdict(signed, Keys()) == ("none", "dkim key not published at mail._domainkey.other.test")

    def down(name: bytes, timeout: float = 5.0) -> bytes | None:
        raise auth.DnsUnavailable("Timeout")

    found = auth.verdict(signed, parse(signed), SMTP, settings(), down)
    assert (found.result, found.why) == ("none", "dkim key lookup failed (dns)")
    assert verdict(signed, keys, security={"verify_dkim": False})[0] == "none"


def test_garbage_signature_header_fails_for_its_domain_and_never_crashes(keys: Keys) -> None:
    keys.key("customer.test")
    raw = compose(headers={"DKIM-Signature": "v=1; a=rsa-sha256; d=customer.test; s=mail; b=!!; bh=??"})
    assert verdict(raw, keys) == ("fail", "dkim=fail d=customer.test")
    wrong_type = compose(headers={"DKIM-Signature": "v=1; a=rsa-sha256; d=customer.test; s=mail; h=from; "
                                                    "c=weird/weird; b=AAAA; bh=AAAA"})
    result, why = verdict(wrong_type, keys)
    assert result == "fail" and why.startswith("dkim signature of customer.test unusable"), why


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["mx.example.com; spf=pass; dkim=pass header.d=customer.test; dmarc=pass header.from=customer.test"],
         "pass"),
        (["mx.example.com; dkim=pass header.i=@customer.test"], "pass"),
        (["mx.example.com; dmarc=fail (p=reject dis=none) header.from=customer.test"], "fail"),
        (["mx.example.com; dkim=fail (bad signature) header.d=customer.test"], "fail"),
        # SPF says nothing about the From address; a foreign signature nothing about its domain
        (["mx.example.com; spf=fail smtp.mailfrom=customer.test; dkim=none"], "none"),
        (["mx.example.com; dkim=pass header.d=evil.test; dkim=fail header.d=evil.test"], "none"),
        (["MX.example.com (comment; dmarc=fail) ; dmarc=pass header.from=customer.test"], "pass"),
        # headers from anyone else are the sender's own text (RFC 8601 section 5)
        (["evil.test; dkim=pass header.d=customer.test; dmarc=pass"], "none"),
        (["evil.test; dmarc=fail"], "none"),
        # a "pass" header the sender added does not outweigh our server's failure
        (["mx.example.com; dmarc=pass header.from=customer.test",
          "mx.example.com; dmarc=fail header.from=customer.test"], "fail"),
    ],
)
def test_trusted_authentication_results(keys: Keys, results: list[str], expected: str) -> None:
    raw = "".join(f"Authentication-Results: {value}\r\n" for value in results).encode() + compose()
    assert verdict(raw, keys)[0] == expected


def test_a_trusted_header_is_taken_instead_of_checking_dkim(keys: Keys) -> None:
    tampered = keys.sign(compose(body="a\r\n"), "customer.test").replace(b"a\r\n", b"b\r\n")
    header = b"Authentication-Results: mx.example.com; dmarc=pass header.from=customer.test\r\n"
    assert verdict(header + tampered, keys)[0] == "pass"
    assert verdict(header.replace(b"mx.example.com", b"evil.test") + tampered, keys)[0] == "fail"


def test_trusted_imap_account_passes(keys: Keys) -> None:
    accounts = [{"name": "intern", "host": "imap.test", "username": "u", "password": "p", "trusted": True},
                {"name": "public", "host": "imap.test", "username": "u", "password": "p"}]
    imap = {"accounts": accounts}
    raw = compose()
    assert verdict(raw, keys, Envelope("", (), "imap:intern"), imap=imap) == ("pass", "trusted imap account intern")
    assert verdict(raw, keys, Envelope("", (), "imap:public"), imap=imap)[0] == "none"
    assert verdict(raw, keys, Envelope("", (), "smtp"), imap=imap)[0] == "none"
