"""The content policy chain: small named rules, read top to bottom.

Each rule is a pure function `check(mail, envelope, settings) -> Decision | None`; None means
"no objection, go on". The first rule that returns a Decision ends the chain. Robots and loops
come first, so nothing below them can ever answer a machine.
"""

from __future__ import annotations

from collections.abc import Callable

from mailbot.checks import attachments, autoreply, bounce, bulk, encrypted, loop, rich_text, shape, size
from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Accept, Decision

Rule = Callable[[ParsedMail, Envelope, Settings], Decision | None]

# Robots first: nothing below may ever answer a machine. Then what can be judged without
# looking into the parts (size, shape), then the parts themselves, most specific reason first.
RULES: tuple[tuple[str, Rule], ...] = (
    ("loop", loop.check),
    ("bounce", bounce.check),
    ("auto_reply", autoreply.check),
    ("bulk", bulk.check),
    ("too_large", size.check),
    ("shape", shape.check),
    ("rich_text", rich_text.check),
    ("encrypted", encrypted.check),
    ("attachments", attachments.check),
)


def run(mail: ParsedMail, envelope: Envelope, settings: Settings) -> tuple[Decision, list[str]]:
    """Apply the rules in order; returns the decision and the names of the rules that ran."""
    trace: list[str] = []
    for name, rule in RULES:
        trace.append(name)
        decision = rule(mail, envelope, settings)
        if decision is not None:
            return decision, trace
    return Accept(), trace
