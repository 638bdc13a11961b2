"""Allow only what the support page allows: images (JPEG, PNG) and at most one sound ZIP.

Every type is libmagic's reading of the bytes, never the declared type or the file name, so
an executable renamed to .jpg is refused as what it is. Detached signatures are proof, not
files, and are left out. Each offending part is named with what it was found to be.
"""

from __future__ import annotations

from mailbot.archive import ZipLimits, inspect_zip
from mailbot.checks.crypto import is_signature
from mailbot.checks.describe import describe
from mailbot.config import AttachmentSettings, Settings
from mailbot.mail import Envelope, ParsedMail, Part
from mailbot.verdicts import Decision, Reject

ZIP = "application/zip"
# The machine-readable parts of delivery, read and abuse reports: text about a mail, not a file.
REPORT_TYPES = frozenset({
    "message/delivery-status", "text/rfc822-headers", "message/disposition-notification", "message/feedback-report",
})


def is_report_part(part: Part) -> bool:
    """A report part that really is text (a lying declared type with other content is a file)."""
    return part.declared_type in REPORT_TYPES and part.detected_type.startswith("text/")


def _is_file(part: Part) -> bool:
    return not (is_signature(part) or is_report_part(part))


def _zip_problems(zips: list[Part], config: AttachmentSettings) -> list[str]:
    if len(zips) > config.max_zip_files:
        return [f"{describe(part)} (at most {config.max_zip_files} ZIP allowed)" for part in zips]
    limits = ZipLimits(config.zip_max_entries, config.zip_max_total_uncompressed, config.zip_max_ratio,
                       config.zip_max_nesting)
    found = ((part, inspect_zip(part.payload, limits)) for part in zips)
    return [f"{describe(part)} ({problem})" for part, problem in found if problem is not None]


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    config = settings.attachments
    files = [part for part in mail.attachments if _is_file(part)]
    zips = [part for part in files if part.detected_type == ZIP]
    details = [describe(part) for part in files if part.detected_type not in (ZIP, *config.allowed_types)]
    details.extend(_zip_problems(zips, config))
    return Reject("attachment_type", tuple(details)) if details else None


def allowed(part: Part, settings: Settings) -> bool:
    """Whether this part's type may be attached at all (for `replay --json`; counts are `check`'s)."""
    return not _is_file(part) or part.detected_type in (ZIP, *settings.attachments.allowed_types)
