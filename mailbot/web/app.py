"""The customer's case page as an aiohttp application, on the daemon's own event loop.

Every database call runs in a worker thread (`asyncio.to_thread`), so a slow query never stalls
SMTP intake on the same loop. A wrong signature and a missing case get the same 404, and an
address that keeps getting 404s is answered ever more slowly (`[web] failure_limit`). The URL is
the secret, so every answer forbids caching, referrers and framing, and the page runs no script.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.engine import Engine

from mailbot import casetoken, hours
from mailbot.config import Language, Settings
from mailbot.files import FileStore
from mailbot.logs import event
from mailbot.models import Case
from mailbot.notices import attachment_name
from mailbot.web import actions, page
from mailbot.web.actions import Refused
from mailbot.web.guard import Window, client_address, form_token

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
CASE_PATH = r"/c/{number:[1-9][0-9]{0,17}}/{signature:[A-Za-z0-9_-]{1,64}}"
FORM_COOKIE = "mailbot_form"
FORM_LIMIT = 16 * 1024  # bytes of a posted form: a phone number and a short note
REFUSAL_STATUS = {"phone": 400, "expired": 403, "rate_limited": 429, "callback_open": 409, "not_open": 409}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def language_of(settings: Settings, case: Case | None) -> Language:
    """The page's language: the case's (as its mail is written), else the site's default."""
    templates = settings.templates
    return next((offered for offered in templates.languages if case is not None and offered == case.language),
                templates.default)


def moment(value: datetime, zone: ZoneInfo, language: Language) -> str:
    local = value.astimezone(zone)
    if language == "de":
        return f"{local:%d.%m.%Y, %H:%M} Uhr"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M}"


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact one (RFC 6266)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def environment(folder: str) -> Environment:
    """The page templates: autoescaped, and strict, so a missing word is an error, not a blank."""
    return Environment(loader=FileSystemLoader(folder), undefined=StrictUndefined,
                       autoescape=select_autoescape(default=True, default_for_string=True))


def render(env: Environment, settings: Settings, name: str, language: Language, **context: Any) -> str:
    """One page template (`web/<name>`) with what every page gets."""
    zone = ZoneInfo(settings.hours.timezone)
    return env.get_template(f"web/{name}").render(
        language=language, company=settings.service.company, zone=zone.key,
        when=lambda value: moment(value, zone, language), **context,
    )


class CasePage:
    """Routes and handlers; `settings` is read per request, so a reload (SIGHUP) takes effect."""

    def __init__(self, engine: Engine, settings: Callable[[], Settings],
                 mail_queued: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.settings = settings
        self.mail_queued = mail_queued  # wakes the outbox, so the agents hear of a callback at once
        self.failures = Window()
        self.actions = Window()
        self._envs: dict[str, Environment] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=FORM_LIMIT)
        app.on_response_prepare.append(self._secure)
        app.router.add_get(CASE_PATH, self.show)
        app.router.add_post(CASE_PATH + "/callback", self.callback)
        app.router.add_post(CASE_PATH + "/solved", self.solved)
        app.router.add_get(CASE_PATH + r"/files/{file:[0-9]{1,18}}", self.download)
        app.router.add_get("/static/page.css", self.stylesheet)
        return app

    def env(self, settings: Settings) -> Environment:
        folder = settings.templates.dir
        if folder not in self._envs:
            self._envs[folder] = environment(folder)
        return self._envs[folder]

    @staticmethod
    def static(request: web.Request) -> str:
        """The way back to the root from this page: links are relative, so the page works under
        any path prefix a reverse proxy puts in front of it."""
        return "/".join([".."] * (request.path.count("/") - 1)) or "."

    def render(self, request: web.Request, settings: Settings, name: str, language: Language, *, status: int = 200,
               **context: Any) -> web.Response:
        html = render(self.env(settings), settings, name, language, static=self.static(request), **context)
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)

    @staticmethod
    async def _secure(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Unknown paths get the same calm 404 page as a wrong link; no traceback ever shows."""
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPNotFound:
            settings = self.settings()
            return self.render(request, settings, "not_found.html.j2", language_of(settings, None), status=404)

    def client(self, request: web.Request) -> str:
        return client_address(request.remote, request.headers.get(hdrs.X_FORWARDED_FOR),
                              self.settings().web.trusted_proxies)

    async def case(self, request: web.Request) -> tuple[Settings, Case]:
        """The case the link names, or a 404; repeated failures from one address are slowed down."""
        settings = self.settings()
        client, now, window = self.client(request), time.monotonic(), settings.web.action_window_minutes * 60
        failures = self.failures.count(client, now, window)
        if failures >= settings.web.failure_limit:
            await asyncio.sleep(settings.web.failure_delay_seconds)
        number = int(request.match_info["number"])
        found = await asyncio.to_thread(page.find, self.engine, settings, number, request.match_info["signature"])
        if found is None:
            self.failures.add(client, now, window)
            if failures + 1 == settings.web.failure_limit:
                event("case-link-failures", client=client, failures=failures + 1,
                      delay=settings.web.failure_delay_seconds)
            raise web.HTTPNotFound()
        return settings, found

    async def show(self, request: web.Request) -> web.Response:
        settings, case = await self.case(request)
        return await self.page(request, settings, case, done=request.query.get("done"))

    async def page(self, request: web.Request, settings: Settings, case: Case, *, status: int = 200,
                   done: str | None = None, refused: str | None = None) -> web.Response:
        """The case page, with a fresh form token (and its cookie, where the browser has none).

        Reading and rendering both run in a worker thread: a case with a long history costs
        milliseconds of template work that the SMTP intake on this loop must not wait for.
        """
        language = language_of(settings, case)
        nonce = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(16)
        assert case.number is not None
        context = {"case": case, "signature": request.match_info["signature"], "mailto": self.mailto(settings, case),
                   "csrf": form_token(settings.tokens.secret, nonce, case.number), "done": done, "refused": refused,
                   "static": self.static(request)}

        def build() -> str:
            view = page.load(self.engine, settings, case)
            due = hours.describe(view.answer_due.astimezone(ZoneInfo(settings.hours.timezone)), language) \
                if view.answer_due else None
            return render(self.env(settings), settings, "case.html.j2", language, view=view, due=due, **context)

        html = await asyncio.to_thread(build)
        response = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
        if FORM_COOKIE not in request.cookies:
            response.set_cookie(FORM_COOKIE, nonce, httponly=True, samesite="Strict", path="/",
                                secure=settings.web.base_url.startswith("https:"))
        return response

    async def callback(self, request: web.Request) -> web.Response:
        return await self.act(request, "callback")

    async def solved(self, request: web.Request) -> web.Response:
        return await self.act(request, "solved")

    async def act(self, request: web.Request, action: str) -> web.Response:
        """A form: rate-limited per client and per case, checked for its token, then carried out."""
        settings, case = await self.case(request)
        assert case.number is not None and case.id is not None
        client, now, window = self.client(request), time.monotonic(), settings.web.action_window_minutes * 60
        keys = (f"client:{client}", f"case:{case.number}")
        try:
            if any(self.actions.count(k, now, window) >= settings.web.action_limit for k in keys):
                raise Refused("rate_limited")
            for k in keys:
                self.actions.add(k, now, window)
            form = await request.post()
            expected = form_token(settings.tokens.secret, request.cookies.get(FORM_COOKIE, ""), case.number)
            if FORM_COOKIE not in request.cookies or not hmac.compare_digest(str(form.get("csrf", "")), expected):
                raise Refused("expired")
            if action == "callback":
                note = actions.clean_note(str(form.get("note", "")))
                mailed = await asyncio.to_thread(actions.request_callback, self.engine, settings, case.id,
                                                 str(form.get("phone", ""))[:64], note)
            else:
                await asyncio.to_thread(actions.mark_solved, self.engine, settings, case.id)
                mailed = []
        except Refused as refusal:
            event("page-action-refused", action=action, case=case.number, client=client, reason=refusal.reason)
            fresh = await asyncio.to_thread(page.find, self.engine, settings, case.number,
                                            request.match_info["signature"])
            return await self.page(request, settings, fresh or case, status=REFUSAL_STATUS[refusal.reason],
                                   refused=refusal.reason)
        event("page-action", action=action, case=case.number, client=client, mailed=",".join(mailed) or None)
        self.mail_queued()
        raise web.HTTPSeeOther(f"../{request.match_info['signature']}?done={action}")

    @staticmethod
    def mailto(settings: Settings, case: Case) -> str:
        """A link that opens the customer's mail program with the service address and the tagged subject."""
        subject = f"{casetoken.tag(case.token or '')} {case.subject}"
        return f"mailto:{settings.service.addresses[0]}?subject={quote(subject, safe='')}"

    async def download(self, request: web.Request) -> web.StreamResponse:
        settings, case = await self.case(request)
        row = await asyncio.to_thread(page.attachment, self.engine, settings, case, int(request.match_info["file"]))
        if row is None or row.id is None:
            raise web.HTTPNotFound()
        path = FileStore(settings.storage.attachments_dir).path_for(row.sha256)
        headers = {hdrs.CONTENT_TYPE: row.detected_type,
                   hdrs.CONTENT_DISPOSITION: content_disposition(attachment_name(row.filename, row.id))}
        return web.FileResponse(path, headers=headers)

    async def stylesheet(self, _request: web.Request) -> web.FileResponse:
        path = Path(self.settings().templates.dir) / "web" / "page.css"
        return web.FileResponse(path, headers={hdrs.CONTENT_TYPE: "text/css; charset=utf-8"})
