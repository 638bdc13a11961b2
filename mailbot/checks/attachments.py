"""Allow only the attachment types configured, judged by content, and ZIPs that pass their checks.

Every type is libmagic's reading of the bytes, never the declared type or the file name, so
an executable renamed to .jpg is refused as what it is. Detached signatures, empty parts and
parts that are really body text are not files and are left out. Each offending file is named
with what it was found to be; `[policy] disallowed_attachments` says whether it costs the
whole mail (`refuse_mail`, the combit rule) or only the file (`drop_file`).
"""

from __future__ import annotations

from mailbot.archive import ZipLimits, inspect_zip
from mailbot.checks.crypto import is_signature
from mailbot.checks.describe import describe
from mailbot.config import AttachmentSettings, Settings
from mailbot.mail import Envelope, ParsedMail, Part
from mailbot.notices import attachment_name
from mailbot.verdicts import Accept, Decision, Dropped, Reject

ZIP = "application/zip"
# The machine-readable parts of delivery, read and abuse reports: text about a mail, not a file.
REPORT_TYPES = frozenset({
    "message/delivery-status", "text/rfc822-headers", "message/disposition-notification", "message/feedback-report",
})
# A sender's own business card, which many clients attach to every mail.
VCARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})
DETAIL_CHARS = 100


def is_report_part(part: Part) -> bool:
    """A report part that really is text (a lying declared type with other content is a file)."""
    return part.declared_type in REPORT_TYPES and part.detected_type.startswith("text/")


def _is_body_text(part: Part) -> bool:
    """An unnamed text/plain or text/html part (a footer, a stray alternative): text, not a file.
    Its bytes must be text too: an executable declared text/plain stays a file."""
    return (part.filename is None and part.declared_type in ("text/plain", "text/html")
            and part.detected_type.startswith("text/"))


def _is_vcard(part: Part) -> bool:
    return (part.declared_type in VCARD_TYPES or part.detected_type in VCARD_TYPES) and (
        part.detected_type.startswith("text/"))


def _is_file(part: Part) -> bool:
    return part.size > 0 and not (
        is_signature(part) or is_report_part(part) or _is_body_text(part) or _is_vcard(part))


def _zip_problems(zips: list[Part], config: AttachmentSettings) -> list[tuple[Part, str, str]]:
    if len(zips) > config.max_zip_files:
        return [(part, "zip_count", f"at most {config.max_zip_files} ZIP allowed") for part in zips]
    limits = ZipLimits(config.zip_max_entries, config.zip_max_total_uncompressed, config.zip_max_ratio,
                       config.zip_max_nesting)
    found = ((part, inspect_zip(part.payload, limits)) for part in zips)
    return [(part, "zip", problem) for part, problem in found if problem is not None]


def _disallowed(mail: ParsedMail, config: AttachmentSettings) -> list[tuple[Part, str, str]]:
    """(file, reason, detail) for each file the configuration does not allow."""
    files = [part for part in mail.attachments if _is_file(part)]
    zips = [part for part in files if part.detected_type == ZIP]
    found = [(part, "type", "") for part in files if part.detected_type not in (ZIP, *config.allowed_types)]
    return found + _zip_problems(zips, config)


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    found = _disallowed(mail, settings.attachments)
    if not found:
        return None
    if settings.policy.disallowed_attachments == "drop_file":
        # The last content rule, so accepting here skips no other rule.
        return Accept(tuple(
            Dropped(part.index, attachment_name(part.filename, part.index + 1), part.detected_type, reason,
                    detail[:DETAIL_CHARS])
            for part, reason, detail in found
        ))
    return Reject("attachment_type", tuple(
        describe(part) + (f" ({detail})" if detail else "") for part, _, detail in found))


def allowed(part: Part, settings: Settings) -> bool:
    """Whether this part's type may be attached at all (for `replay --json`; counts are `check`'s)."""
    return not _is_file(part) or part.detected_type in (ZIP, *settings.attachments.allowed_types)
