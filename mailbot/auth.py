"""Who sent this mail, really: the authentication verdict every mail gets before anything acts on it.

Anyone can write any From. The verdict says whether the From domain vouched for the mail:

- `pass`: the mail came through a trusted IMAP account, or a trusted Authentication-Results
  header (RFC 8601) says dmarc=pass or dkim=pass for the From domain, or (without a trusted
  header) a DKIM signature of the From domain verifies here.
- `fail`: a trusted header says dmarc=fail or dkim=fail for the From domain, or (without one) a
  DKIM signature of the From domain does not verify: the From domain says "not from us".
- `none`: no evidence either way (no signature, no published key, DNS did not answer). Most
  mail is here; it may open cases and reply, but never act as an agent or add participants.

Only Authentication-Results headers whose authserv-id is in `[security] trusted_authserv_ids`
are read (our own MTA's; RFC 8601 section 5: everything else is sender text). Such a header
saying fail outweighs another saying pass, so a forged "pass" cannot cancel our server's "fail"
when an MTA does not strip look-alikes.

A signature is aligned when its d= is the From domain or a parent of it (d=example.com signs
for news.example.com): only whoever runs the parent's DNS can publish a key there, and DNS
delegation makes them the authority over the child anyway, so no public-suffix list is needed.

Pure apart from the DNS lookup for the key, which `dnsfunc` replaces in tests and which is
bounded by `[security] dns_timeout_seconds` for all of one mail's lookups together (so the
judge pool's time limit is never spent waiting for DNS).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import dkim
import dns.exception
import dns.resolver

from mailbot.config import Settings
from mailbot.mail import AuthVerdict, Envelope, ParsedMail

DnsFunc = Callable[..., bytes | None]  # dkimpy's lookup: (name: bytes, timeout=...) -> TXT or None

MAX_SIGNATURES = 3  # aligned signatures tried per mail: each costs a DNS lookup and a hash of the body
_COMMENT = re.compile(r"\([^()]*\)")  # RFC 8601 comments, e.g. "(p=reject dis=none)"
_RESULT = re.compile(r"\s*([a-z][a-z0-9-]*)\s*=\s*([a-z]+)(.*)", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"header\.(?:d|from|i)\s*=\s*(?:[^@\s;]*@)?([^\s;]+)", re.IGNORECASE)
_SIG_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^\s;]+)", re.IGNORECASE)

_quiet = logging.getLogger("dkimpy")  # dkimpy logs every bad signature as an error; the verdict says it
_quiet.propagate = False


class KeyMissing(Exception):
    """No key is published for the selector: nothing to verify against, so no evidence."""


class DnsUnavailable(Exception):
    """The key lookup timed out or failed: try again later, judge it as no evidence now."""


def dns_txt(name: bytes, timeout: float = 5.0) -> bytes | None:
    """The TXT record at `name` (dnspython), the whole lookup bounded by `timeout` seconds."""
    try:
        answer = dns.resolver.resolve(name.decode("ascii", "replace"), "TXT", lifetime=timeout,
                                      raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(f"{type(exc).__name__}") from exc
    for record in answer.rrset or ():
        return b"".join(record.strings)
    return None


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower().rstrip(".") if "@" in address else ""


def aligned(signer: str, from_domain: str) -> bool:
    """Whether a signing domain vouches for the From domain: the same, or a parent of it."""
    signer = signer.lower().rstrip(".")
    return bool(signer) and "." in signer and (from_domain == signer or from_domain.endswith("." + signer))


def _results(value: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(authserv-id, [(method, result, properties)]) of one Authentication-Results value."""
    head, *resinfos = _COMMENT.sub(" ", value).split(";")
    found = [(m[1].lower(), m[2].lower(), m[3]) for m in map(_RESULT.match, resinfos) if m]
    return head.strip().split(" ")[0].lower(), found


def from_headers(mail: ParsedMail, trusted_ids: tuple[str, ...]) -> AuthVerdict | None:
    """The verdict of our own servers' Authentication-Results headers; None if there are none."""
    passed: str | None = None
    seen = False
    from_domain = domain_of(mail.from_addr)
    for value in mail.headers.get("authentication-results", ()):
        server, results = _results(value)
        if server not in trusted_ids:
            continue  # RFC 8601 section 5: a header from anyone else is text the sender wrote
        seen = True
        for method, result, properties in results:
            domain = _PROPERTY.search(properties)
            for_from = method == "dmarc" or (domain is not None and aligned(domain[1], from_domain))
            if method not in ("dmarc", "dkim") or not for_from:
                continue
            if result == "fail":
                return AuthVerdict("fail", f"{method}=fail ({server})")
            if result == "pass":
                passed = passed or f"{method}=pass ({server})"
    if passed:
        return AuthVerdict("pass", passed)
    return AuthVerdict("none", f"no dmarc or aligned dkim result ({', '.join(trusted_ids)})") if seen else None


def _signers(mail: ParsedMail) -> list[tuple[int, str]]:
    """(index, d=) of the DKIM-Signature headers whose d= aligns with From, in header order."""
    from_domain = domain_of(mail.from_addr)
    found = ((index, _SIG_DOMAIN.search(value)) for index, value in enumerate(mail.headers.get("dkim-signature", ())))
    return [(index, domain[1].lower()) for index, domain in found if domain and aligned(domain[1], from_domain)][
        :MAX_SIGNATURES]


def from_dkim(raw: bytes, mail: ParsedMail, dnsfunc: DnsFunc, timeout: float) -> AuthVerdict:
    """Verify the From domain's own DKIM signatures here: one that verifies is a pass."""
    signers = _signers(mail)
    why = "no dkim signature of the from domain"
    if not signers:
        return AuthVerdict("none", why)

    deadline = time.monotonic() + timeout  # one budget for all of this mail's lookups

    def lookup(name: bytes, timeout: float = timeout) -> bytes | None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DnsUnavailable("out of time")
        record = dnsfunc(name, timeout=left)
        if not record:
            raise KeyMissing(name.decode("ascii", "replace").rstrip("."))
        return record

    verifier = dkim.DKIM(raw, logger=_quiet, timeout=timeout)
    failed: str | None = None
    for index, domain in signers:
        try:
            if verifier.verify(idx=index, dnsfunc=lookup):
                return AuthVerdict("pass", f"dkim=pass d={domain}")
            failed = f"dkim=fail d={domain}"
        except KeyMissing as exc:
            why = f"dkim key not published at {exc}"
        except DnsUnavailable:
            why = "dkim key lookup failed (dns)"
        except dkim.ValidationError:  # the body or a signed header changed after signing
            failed = f"dkim=fail d={domain}"
        except dkim.DKIMException as exc:
            failed = f"dkim signature of {domain} unusable: {exc}"[:200]
    return AuthVerdict("fail", failed) if failed else AuthVerdict("none", why)


def verdict(raw: bytes, mail: ParsedMail, envelope: Envelope, settings: Settings,
            dnsfunc: DnsFunc = dns_txt) -> AuthVerdict:
    """The authentication verdict for one mail (see the module docstring for the order)."""
    security = settings.security
    account = envelope.source.removeprefix("imap:") if envelope.source.startswith("imap:") else None
    if account is not None and any(a.name == account and a.trusted for a in settings.imap.accounts):
        return AuthVerdict("pass", f"trusted imap account {account}")
    found = from_headers(mail, security.trusted_authserv_ids)
    if found is not None:
        return found
    if not security.verify_dkim:
        return AuthVerdict("none", "no trusted authentication-results; dkim not verified here")
    try:
        return from_dkim(raw, mail, dnsfunc, security.dns_timeout_seconds)
    except Exception as exc:  # dkimpy on garbage: no evidence, never a crash of the judge
        return AuthVerdict("none", f"dkim not checkable: {type(exc).__name__}"[:200])
