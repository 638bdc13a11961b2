"""The shared real-world corpus through parse + checks: no crash, and each kind's known verdict.

The corpus lives beside the repository (../shared/corpus) and is never copied into it; where
it is absent these tests skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot import checks, config
from mailbot.mail import Envelope
from mailbot.parse import ParseError, parse
from mailbot.verdicts import Decision, Ignore, Reject

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ROBOT_KINDS = frozenset({"dsn", "bulk", "autoreply", "auto-generated", "arf-report", "mdn"})
# Robot mail without any machine marker a rule could honestly use; each one looked at by hand.
NOT_RECOGNISABLE_AS_ROBOT = {
    # "Fwd: Returned mail": a person forwarding a bounce from Apple Mail ("Forward the message."),
    # the corpus' own kind forwarded-ndr. A human wrote it, so reaching a human is right.
    "sisimai-set-of-emails__maildir__bsd__lhost-sendmail-14.eml",
}
SIGNATURE_TYPES = ("application/pgp-signature", "application/pgp-keys")
# Its smime.p7s is base64 with words spliced in (test data of a parser), so the bytes are no
# PKCS#7 signature, and judged by content it is an unknown binary file like any other.
BROKEN_SIGNATURE = "ruby-mail__emails__mime_emails__raw_email7.eml"

Verdict = Decision | ParseError


def _kinds() -> dict[str, str]:
    rows = (line.split("\t") for line in (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:])
    return {row[0]: row[2] for row in rows}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, tuple[str, Verdict]]:
    """Every corpus file's MANIFEST kind and decision (a ParseError means quarantine)."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    settings = config.parse(
        {"service": {"addresses": ["support@example.com"], "noreply": "noreply@example.com"},
         "tokens": {"secret": "0123456789abcdef"}},
        Path("config.toml"),
    )
    # Replay has no SMTP envelope; a non-empty reverse path leaves every bounce marker to the mail.
    envelope = Envelope("replay@localhost", ("support@example.com",), "replay")
    kinds = _kinds()
    found: dict[str, tuple[str, Verdict]] = {}
    for path in sorted(CORPUS.iterdir()):
        if path.suffix in (".tsv", ".md"):
            continue
        try:
            verdict: Verdict = checks.run(parse(path.read_bytes()), envelope, settings)[0]
        except ParseError as exc:
            verdict = exc
        found[path.name] = (kinds[path.name], verdict)
    return found


def test_every_manifest_file_gets_a_verdict(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    assert sorted(verdicts) == sorted(_kinds())


def test_robots_are_ignored(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    answered = [
        f"{name}: {verdict}" for name, (kind, verdict) in verdicts.items()
        if kind in ROBOT_KINDS and not isinstance(verdict, Ignore | ParseError)
        and name not in NOT_RECOGNISABLE_AS_ROBOT
    ]
    assert answered == []


def test_exceptions_are_still_exceptional(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    # When a rule learns to recognise one of them, it leaves the list.
    assert [name for name in NOT_RECOGNISABLE_AS_ROBOT if isinstance(verdicts[name][1], Ignore)] == []


def test_tnef_is_rich_text(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    tnef = {name: verdict for name, (kind, verdict) in verdicts.items() if kind == "tnef"}
    assert tnef and all(isinstance(v, Reject) and v.reason == "rich_text" for v in tnef.values()), tnef


def test_outlook_without_tnef_is_not_rich_text(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    rich = [
        name for name, (kind, verdict) in verdicts.items()
        if kind in ("outlook", "winmail-declared") and isinstance(verdict, Reject) and verdict.reason == "rich_text"
    ]
    assert rich == []


def test_signatures_are_never_offending_attachments(verdicts: dict[str, tuple[str, Verdict]]) -> None:
    offending = [
        f"{name}: {detail}" for name, (_, verdict) in verdicts.items() if isinstance(verdict, Reject)
        for detail in verdict.details if detail.endswith(SIGNATURE_TYPES) or ".p7s:" in detail
        if name != BROKEN_SIGNATURE
    ]
    assert offending == []
