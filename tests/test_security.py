"""Issue 9's attacks, each tried the way an attacker would, against the real pipeline and a real
database (both backends): every one must fail to work.

Mail goes through `inbox.store` + `pipeline.run` as SMTP intake hands it over (with the client's
IP); DKIM-signed mail is judged with the test's keys handed to dkimpy's DNS lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from support import base_sections, compose, database_from_before, write_config
from test_auth import Keys
from test_status import events

from mailbot import config, db, inbox, pipeline, views
from mailbot.cases import Context
from mailbot.config import Settings
from mailbot.files import FileStore
from mailbot.judge import judge
from mailbot.mail import Envelope
from mailbot.models import Case, InboundSpool, Outbox
from mailbot.notices import Notices

AGENT = "anna@example.com"
CUSTOMER = "kunde@customer.test"
TRUSTED = "mx.example.com"
PASSED = f"{TRUSTED}; dkim=pass header.d=customer.test; dmarc=pass header.from=customer.test"


@dataclass
class Site:
    settings: Settings
    engine: Engine

    def take(self, raw: bytes, mail_from: str = CUSTOMER, peer: str | None = "198.51.100.7") -> InboundSpool:
        """One mail as SMTP intake stores it, processed; returns its spool row."""
        stored = inbox.store(self.engine, raw, Envelope(mail_from, ("service@example.com",), "smtp", peer=peer))
        pipeline.run(self.engine, self.settings, stored.spool_id)
        row = inbox.get(self.engine, stored.spool_id)
        assert row is not None
        return row

    def judged(self, raw: bytes, keys: Keys, mail_from: str = CUSTOMER) -> pipeline.Outcome:
        """Judge with the test's DKIM keys, then act, in one committed transaction."""
        envelope = Envelope(mail_from, ("service@example.com",), "smtp")
        with db.session(self.engine) as session:
            ctx = Context(session, self.settings, Notices(self.settings),
                          FileStore(self.settings.storage.attachments_dir), None, envelope=envelope)
            return pipeline.act(ctx, judge(raw, envelope, self.settings, keys.dns))

    def sent(self, kind: str | None = None) -> list[tuple[str, Message]]:
        with Session(self.engine) as session:
            query = select(Outbox).order_by(col(Outbox.id))
            rows = session.exec(query.where(Outbox.kind == kind) if kind else query).all()
            return [(row.recipient, message_from_bytes(row.raw, policy=default_policy)) for row in rows]

    def token(self, number: int) -> str:
        with Session(self.engine) as session:
            return str(session.exec(select(Case.token).where(Case.number == number)).one())

    def case(self, number: int) -> dict[str, Any]:
        found = views.show_case(self.engine, number)
        assert found is not None
        return found


@pytest.fixture
def make(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    caplog.set_level(logging.INFO, logger="mailbot")
    engines: list[Engine] = []

    def site(**sections: dict[str, Any]) -> Site:
        defaults = {"agents": {"addresses": [AGENT]}, "security": {"trusted_authserv_ids": [TRUSTED]}}
        path = write_config(tmp_path / "config.toml", base_sections(tmp_path, db_url, **{**defaults, **sections}))
        settings = config.load(path)
        engines.append(db.make_engine(settings.database.url))
        return Site(settings, engines[-1])

    yield site
    for engine in engines:
        engine.dispose()


def opened(site: Site, **fields: Any) -> int:
    row = site.take(compose(**fields), mail_from=fields.get("sender", CUSTOMER))
    assert row.verdict == "new_case" and row.case_number
    return row.case_number


def test_forged_customer_with_dmarc_fail_is_quarantined_unanswered(make: Any) -> None:
    site = make()
    number = opened(site)
    forged = site.take(compose(subject=f"Re: [#{site.token(number)}] Drucker", message_id="forged",
                               headers={"Authentication-Results": f"{TRUSTED}; dmarc=fail header.from=customer.test",
                                        "Cc": "spy@evil.example"}))
    assert (forged.status, forged.verdict, forged.reason) == ("quarantined", "quarantined", "auth_failed")
    assert forged.auth == f"fail: dmarc=fail ({TRUSTED})"
    assert "auth_fail" in (forged.trace or "").split(",")
    assert [kind for kind in (m["X-Mailbot-Notice"] for _, m in site.sent())] == ["receipt"]
    assert len(site.case(number)["messages"]) == 2 and len(site.case(number)["participants"]) == 1


def test_a_broken_dkim_signature_of_the_from_domain_is_quarantined(make: Any) -> None:
    site, keys = make(), Keys()
    signed = keys.sign(compose(body="Bitte an IBAN DE01 zahlen.\r\n"), "customer.test")
    outcome = site.judged(signed.replace(b"DE01", b"DE99"), keys)
    assert (outcome.verdict, outcome.reason, outcome.notices) == ("quarantined", "auth_failed", [])
    # even a mail the content rules would refuse gets no notice: it would go to someone else
    refused = keys.sign(compose(headers={"Content-Type": "text/rtf"}), "customer.test").replace(b"Hallo", b"Hallo!")
    assert (site.judged(refused, keys).reason, site.sent()) == ("auth_failed", [])


def test_cc_spy_on_a_forged_reply_never_joins(make: Any) -> None:
    site = make()
    number = opened(site)
    spy = site.take(compose(subject=f"Re: [#{site.token(number)}] Drucker", headers={"Cc": "spy@evil.example"}))
    assert (spy.verdict, spy.case_number) == ("reply", number)  # indistinguishable from the customer
    assert [p["address"] for p in site.case(number)["participants"]] == [CUSTOMER]
    agent = site.take(compose(subject=f"Re: [#{site.token(number)}] Drucker", sender=AGENT, body="Neu starten.\r\n",
                              headers={"Authentication-Results": f"{TRUSTED}; dmarc=pass header.from=example.com"}),
                      mail_from=AGENT)
    assert agent.verdict == "reply" and "agent_relayed" in (agent.trace or "")
    assert {to for to, _ in site.sent()} == {CUSTOMER}
    # the same Cc from mail that passes authentication does join
    site.take(compose(subject=f"Re: [#{site.token(number)}] Drucker", headers={
        "Cc": "kollegin@customer.test", "Authentication-Results": PASSED}))
    assert "kollegin@customer.test" in [p["address"] for p in site.case(number)["participants"]]


def test_dkim_signed_agent_acts_and_the_case_shows_the_verdict(make: Any) -> None:
    site, keys = make(security={}), Keys()
    number = opened(site)
    answer = keys.sign(compose(subject=f"Re: [#{site.token(number)}] x", sender=AGENT,
                               body="#status resolved\r\nErledigt.\r\n"), "example.com")
    outcome = site.judged(answer, keys, mail_from=AGENT)
    assert outcome.verdict == "reply" and outcome.auth == {"result": "pass", "why": "dkim=pass d=example.com"}
    assert site.case(number)["status"] == "resolved"
    forged = site.judged(answer.replace(b"Erledigt", b"Gelogen"), keys, mail_from=AGENT)
    assert (forged.verdict, forged.reason, forged.auth) == (
        "quarantined", "auth_failed", {"result": "fail", "why": "dkim=fail d=example.com"})
    assert forged.notices == [{"kind": "agent_unverified", "to": AGENT}]  # its one automatic mail
    shown = views.render_case(site.case(number))
    assert "[auth] none: no dkim signature of the from domain" in shown  # the opening mail


def test_a_subject_full_of_tokens_is_one_guess(make: Any) -> None:
    site = make(policy={"unknown_token": "reject"})
    number = opened(site)
    real = site.token(number)
    wrong = [f"SVC-{n}-AAAA" for n in range(20_000, 20_500)]
    wrong[250] = real
    guessing = site.take(compose(subject=" ".join(f"[#{t}]" for t in wrong), sender="x@evil.example"),
                         mail_from="x@evil.example")
    all_wrong = site.take(compose(subject=" ".join(f"[#SVC-{n}-AAAA]" for n in range(20_000, 20_500)),
                                  sender="y@evil.example"), mail_from="y@evil.example")
    assert (guessing.verdict, guessing.reason) == (all_wrong.verdict, all_wrong.reason) == ("rejected", "unknown_token")
    assert len(site.case(number)["messages"]) == 2


def test_token_guessing_runs_into_the_limit_per_ip(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    site = make(security={"trusted_authserv_ids": [TRUSTED], "token_failure_limit": 3})
    number = opened(site, message_id="open")
    token = site.token(number)
    for n in range(3):
        row = site.take(compose(subject=f"[#SVC-{number}-{'ABCD'[n]}AAA]", sender=f"g{n}@evil.example"),
                        mail_from=f"g{n}@evil.example", peer="203.0.113.9")
        assert "token_failed" in (row.trace or "")
    # the next mail from that IP, even with the right token and a participant's From, matches by token no more
    limited = site.take(compose(subject=f"Re: [#{token}]"), peer="203.0.113.9")
    assert "token_limited" in (limited.trace or "") and limited.case_number != number
    assert events(caplog, "token-checks-limited")[0]["by_peer"] == 3
    # thread headers still work, and other clients are not affected
    threaded = site.take(compose(subject=f"Re: [#{token}]", headers={"In-Reply-To": "<open@customer.test>"}),
                         peer="203.0.113.9")
    assert (threaded.verdict, threaded.case_number) == ("reply", number)
    assert site.take(compose(subject=f"Re: [#{token}]")).case_number == number


def test_a_thousand_cc_get_no_receipt_and_do_not_join(make: Any) -> None:
    site = make(policy={"cc_participants": "opening_mail"})
    many = ", ".join(f"victim{n}@target.example" for n in range(1000))
    number = opened(site, headers={"Cc": many})
    assert [to for to, _ in site.sent()] == [CUSTOMER]
    assert [p["address"] for p in site.case(number)["participants"]] == [CUSTOMER]
    few = ", ".join(f"c{n}@customer.test" for n in range(20))
    capped = opened(site, headers={"Cc": few})
    assert len(site.case(capped)["participants"]) == 10  # max_participants
    assert [to for to, _ in site.sent()] == [CUSTOMER, CUSTOMER]


def test_receipt_only_to_a_from_that_is_the_envelope_sender_or_authenticated(make: Any) -> None:
    site = make()
    forged = site.take(compose(sender="victim@target.example"), mail_from="attacker@evil.example")
    assert forged.verdict == "new_case" and site.sent() == []
    site.take(compose(headers={"Authentication-Results": PASSED}), mail_from="bounces@mailer.example")
    assert [to for to, _ in site.sent()] == [CUSTOMER]


def test_a_huge_subject_on_a_refused_mail_is_not_echoed(make: Any) -> None:
    site = make(policy={"new_cases_by_email": False})
    subject = "A" * 10 + " " + "B" * 30_000
    site.take(compose(subject=subject))
    ((_, notice),) = site.sent("no_new_cases")
    raw = notice.as_bytes()
    assert len(raw) < 16 * 1024 and "B" * 201 not in raw.decode() and len(str(notice["Subject"])) <= 200
    assert "Drucker im 2. Stock" not in notice.get_content()  # never the body


def test_a_notice_lists_ten_files_with_short_names(make: Any) -> None:
    site = make()
    parts = "".join(
        f"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        f'filename="{n:02d}{"x" * 300}.exe"\r\n\r\nMZ\x90\x00 executable {n}\r\n' for n in range(40))
    raw = compose(headers={"MIME-Version": "1.0", "Content-Type": 'multipart/mixed; boundary="b"'},
                  body=f"--b\r\nContent-Type: text/plain\r\n\r\nHallo\r\n{parts}--b--\r\n")
    assert site.take(raw).reason == "attachment_type"
    ((_, notice),) = site.sent("attachment_type")
    text = notice.get_content()
    assert text.count("x: ") == 10 and "x" * 101 not in text and "(+30)" in text
    assert len(notice.as_bytes()) < 16 * 1024


def test_no_notice_to_a_null_envelope_sender(make: Any) -> None:
    site = make(policy={"new_cases_by_email": False})
    row = site.take(compose(subject="A" * 30_000, headers={"Content-Type": "text/rtf"}), mail_from="")
    assert (row.verdict, row.reason) == ("ignored", "bounce") and site.sent() == []


def test_hourly_caps_per_domain_and_overall_bite_and_are_logged(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    site = make(policy={"domain_hourly_limit": 2, "global_hourly_limit": 3})
    for n in range(3):
        opened(site, sender=f"v{n}@target.example")
    opened(site, sender="a@other.example")
    opened(site, sender="b@third.example")
    assert [to for to, _ in site.sent()] == ["v0@target.example", "v1@target.example", "a@other.example"]
    assert [e["reason"] for e in events(caplog, "notice-suppressed")] == ["domain_limit", "global_limit"]


def test_forged_agent_warning_is_one_mail_per_window(make: Any) -> None:
    site = make()
    number = opened(site)
    for n in range(3):
        row = site.take(compose(subject=f"Re: [#{site.token(number)}] " + "x" * 30_000, sender=AGENT,
                                body=f"#status closed\r\n{n}\r\n"), mail_from=AGENT)
        assert (row.verdict, row.reason) == ("rejected", "agent_unverified")
    ((to, warning),) = site.sent("agent_unverified")
    assert to == AGENT and "x" * 201 not in warning.get_content() and len(warning.as_bytes()) < 16 * 1024
    assert site.case(number)["status"] == "new"


def test_a_database_from_before_gets_the_new_columns(db_url: str) -> None:
    engine = database_from_before(db_url, [
        "DROP INDEX ix_outbox_recipient_domain",
        *(f"ALTER TABLE {table} DROP COLUMN {column}"
          for table, column in (("inbound_spool", "auth"), ("inbound_spool", "peer"), ("outbox", "recipient_domain"))),
        "INSERT INTO outbox (kind, recipient, message_id, raw, status, attempts, next_attempt_at, created, "
        "breach_logged) VALUES ('receipt', 'k@customer.test', '<m@x>', '', 'sent', 1, '2026-01-01', '2026-01-01', "
        "false)",
    ])
    with Session(engine) as session:
        assert session.exec(select(Outbox.recipient_domain)).all() == [""]
        assert session.exec(select(InboundSpool.auth, InboundSpool.peer)).all() == []
    assert "ix_outbox_recipient_domain" in {index["name"] for index in inspect(engine).get_indexes("outbox")}
    engine.dispose()
