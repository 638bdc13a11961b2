"""The content policy chain: small named rules, read top to bottom.

Each rule is a pure function `check(mail, envelope, settings) -> Decision | None`; None means
"no objection, go on". The first rule that returns a Decision ends the chain. Robots and loops
come first, so nothing below them can ever answer a machine.
"""

from __future__ import annotations

from collections.abc import Callable

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Accept, Decision

Rule = Callable[[ParsedMail, Envelope, Settings], Decision | None]

RULES: tuple[tuple[str, Rule], ...] = ()


def run(mail: ParsedMail, envelope: Envelope, settings: Settings) -> tuple[Decision, list[str]]:
    """Apply the rules in order; returns the decision and the names of the rules that ran."""
    trace: list[str] = []
    for name, rule in RULES:
        trace.append(name)
        decision = rule(mail, envelope, settings)
        if decision is not None:
            return decision, trace
    return Accept(), trace
