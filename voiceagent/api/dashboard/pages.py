"""Dashboard pages: login, live calls, campaigns, metrics, calls, call detail, promises, upload.

Pages read the session cookie themselves: without one they redirect to the login page, and
a role that may not see a page gets a 403 page. Their data comes from the JSON API's own
functions (same queries, same role rules); the browser scripts in ``static/app.js`` call the
JSON API for the rest (live refresh, recordings, transcripts, uploads, start/pause).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from voiceagent.api.auth import SESSION_COOKIE, TokenError, allowed
from voiceagent.api.dashboard.i18n import LANG_COOKIE, LANGS, Translator, pick_lang
from voiceagent.api.dashboard.live import router as live_router
from voiceagent.api.deps import MAX_PAGE, PageParams, Principal, authenticate, state
from voiceagent.api.errors import ApiError
from voiceagent.api.routes import calls as calls_api
from voiceagent.api.routes import campaigns as campaigns_api
from voiceagent.api.routes import lists as lists_api
from voiceagent.api.routes import metrics as metrics_api
from voiceagent.api.routes import promises as promises_api
from voiceagent.crm.models import Call, Campaign, Promise

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
pages = APIRouter(include_in_schema=False)
"""The HTML pages and static files (left out of the OpenAPI schema)."""

STAFF = ("operator", "supervisor")
PAGES: dict[str, tuple[str, ...]] = {
    "live": STAFF,
    "campaigns": STAFF,
    "metrics": ("supervisor",),
    "calls": STAFF,
    "promises": STAFF,
    "upload": ("operator",),
}
"""Nav pages and the roles that see them (admin sees all)."""
CALLS_PER_PAGE = 25
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""No inline scripts or styles: the scripts attach their handlers with addEventListener."""
PUBLIC = {
    ("GET", "/"),
    ("GET", "/ui/login"),
    ("GET", "/ui/live"),
    ("GET", "/ui/campaigns"),
    ("GET", "/ui/metrics"),
    ("GET", "/ui/calls"),
    ("GET", "/ui/calls/{call_id}"),
    ("GET", "/ui/promises"),
    ("GET", "/ui/upload"),
    ("GET", "/ui/lists/{list_id}/errors.csv"),
    ("GET", "/static/{path:path}"),
}
"""Routes without a role dependency: they check the session themselves (see module doc)."""


def viewer(request: Request) -> Principal | None:
    """The logged-in user of a page request, or None."""
    if SESSION_COOKIE not in request.cookies and "Authorization" not in request.headers:
        return None
    with state(request).sessions() as s:
        try:
            return authenticate(request, s)
        except ApiError:
            return None


def _csrf(request: Request) -> str:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return ""
    try:
        return state(request).signer.load(cookie).csrf
    except TokenError:
        return ""


def render(
    request: Request,
    template: str,
    who: Principal | None,
    page: str,
    status: int = 200,
    **context: Any,
) -> Response:
    """A page in the request's language, with the CSP header and the chosen language kept."""
    lang = pick_lang(request)
    t = Translator(lang)
    nav = [] if who is None else [p for p, roles in PAGES.items() if allowed(who.role, roles)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "langs": LANGS,
            "who": who,
            "page": page,
            "nav": nav,
            "csrf": _csrf(request) if who is not None else "",
            "js_strings": t.js(),
            "may": (lambda *roles: who is not None and allowed(who.role, roles)),
            "here": lambda **kw: _with_query(request, **kw),
            **context,
        },
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _with_query(request: Request, **changes: Any) -> str:
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return request.url.path + ("?" + urlencode(query) if query else "")


def gate(request: Request, page: str, roles: tuple[str, ...]) -> Principal | Response:
    """The viewer if they may see the page; else a redirect to login, or a 403 page."""
    who = viewer(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
    if not allowed(who.role, roles):
        t = Translator(pick_lang(request))
        message = t("error.forbidden", role=who.role)
        return render(request, "error.html", who, page, status=403, message=message)
    return who


def _with_db(request: Request, fn: Callable[[Session], Any]) -> Any:
    with state(request).sessions.begin() as s:
        return fn(s)


def _day(raw: str | None, default: date | None = None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@pages.get("/")
def home(request: Request) -> Response:
    """The dashboard's landing page: live calls (or login)."""
    return RedirectResponse("/ui/live", status_code=303)


@pages.get("/ui/login")
def login_page(request: Request, next: str = "/ui/live") -> Response:
    """The login form (it posts to ``/api/session`` from the browser)."""
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/ui/live"
    return render(request, "login.html", viewer(request), "login", next=safe_next)


@pages.get("/ui/live")
def live_page(request: Request) -> Response:
    """Calls in progress, refreshed every 2 s from ``/api/live``."""
    who = gate(request, "live", PAGES["live"])
    if isinstance(who, Response):
        return who
    return render(request, "live.html", who, "live")


@pages.get("/ui/campaigns")
def campaigns_page(request: Request) -> Response:
    """Campaigns with their progress, and start/pause for operators."""
    who = gate(request, "campaigns", PAGES["campaigns"])
    if isinstance(who, Response):
        return who

    def load(s: Session) -> list[dict[str, Any]]:
        listed = campaigns_api.list_campaigns(who, s, PageParams(MAX_PAGE, 0), status=None)
        out = []
        for item in listed["items"]:
            full = campaigns_api.get_campaign(who, s, item["id"])
            progress = full["progress"]
            total = progress["accounts"]
            attempted = min(progress["accounts_attempted"], total)
            full["percent"] = round(100 * attempted / total) if total else 0
            out.append(full)
        return out

    return render(request, "campaigns.html", who, "campaigns", campaigns=_with_db(request, load))


@pages.get("/ui/metrics")
def metrics_page(request: Request) -> Response:
    """Today's figures (or a chosen range) as cards, per-day charts, and a per-campaign table."""
    who = gate(request, "metrics", PAGES["metrics"])
    if isinstance(who, Response):
        return who
    today = datetime.now(UTC).date()
    last = _day(request.query_params.get("to"), today) or today
    first = _day(request.query_params.get("from"), last) or last
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=metrics_api.MAX_RANGE.days - 1))
    chart_first = min(first, last - timedelta(days=13))
    as_of = _day(request.query_params.get("as_of"))
    end = _midnight(last + timedelta(days=1))

    def load(s: Session) -> dict[str, Any]:
        def rows(frm: date, group_by: str) -> list[dict[str, Any]]:
            found = metrics_api.metrics(
                who, s, _midnight(frm), end, group_by, None, None, as_of=as_of
            )
            return list(found["rows"])

        totals = rows(first, "")
        names = {cid: name for cid, name in s.execute(select(Campaign.id, Campaign.name))}
        by_campaign = rows(first, "campaign")
        for row in by_campaign:
            row["name"] = names.get(row["group"]["campaign"], "—")
        days = {r["group"]["day"]: r for r in rows(chart_first, "day")}
        series = []
        for n in range((last - chart_first).days + 1):
            key = (chart_first + timedelta(days=n)).isoformat()
            series.append({"day": key, **days.get(key, {})})
        return {"totals": totals[0] if totals else {}, "campaigns": by_campaign, "series": series}

    data = _with_db(request, load)
    return render(
        request,
        "metrics.html",
        who,
        "metrics",
        first=first,
        last=last,
        today=today,
        as_of=as_of,
        **data,
    )


@pages.get("/ui/calls")
def calls_page(request: Request) -> Response:
    """Calls, newest first, filtered by day, campaign, outcome and right party; paginated."""
    who = gate(request, "calls", PAGES["calls"])
    if isinstance(who, Response):
        return who
    q = request.query_params
    day = _day(q.get("day"))
    campaign_id = _int(q.get("campaign_id"))
    outcome = q.get("outcome") or None
    right_party = {"yes": True, "no": False}.get(q.get("right_party", ""))
    page_no = max(1, _int(q.get("page")) or 1)

    def load(s: Session) -> dict[str, Any]:
        found = calls_api.list_calls(
            who,
            s,
            PageParams(CALLS_PER_PAGE, (page_no - 1) * CALLS_PER_PAGE),
            campaign_id=campaign_id,
            frm=_midnight(day) if day else None,
            to=_midnight(day + timedelta(days=1)) if day else None,
            outcome=outcome,
            right_party=right_party,
            status=None,
        )
        outcomes = s.scalars(select(Call.outcome).distinct().where(Call.outcome.is_not(None)))
        campaigns = s.execute(select(Campaign.id, Campaign.name).order_by(Campaign.id)).all()
        return {"found": found, "outcomes": sorted(outcomes), "campaigns": campaigns}

    data = _with_db(request, load)
    pages = max(1, -(-data["found"]["total"] // CALLS_PER_PAGE))
    return render(
        request,
        "calls.html",
        who,
        "calls",
        day=day,
        campaign_id=campaign_id,
        outcome=outcome,
        right_party=q.get("right_party", ""),
        page_no=page_no,
        pages=pages,
        **data,
    )


@pages.get("/ui/calls/{call_id}")
def call_page(request: Request, call_id: str) -> Response:
    """One call: timings, journal, promises; recording and transcript for supervisors."""
    who = gate(request, "calls", PAGES["calls"])
    if isinstance(who, Response):
        return who

    def load(s: Session) -> dict[str, Any]:
        detail = calls_api.call_detail(who, s, call_id)
        promises = s.scalars(select(Promise).where(Promise.call_id == call_id))
        fields = promises_api.PROMISE_FIELDS
        return {
            "call": detail,
            "promises": [{f: getattr(p, f) for f in fields} for p in promises],
        }

    try:
        data = _with_db(request, load)
    except ApiError as exc:
        return render(request, "error.html", who, "calls", status=exc.status, message=exc.message)
    return render(request, "call.html", who, "calls", **data)


@pages.get("/ui/promises")
def promises_page(request: Request) -> Response:
    """Promises to pay by due date, filtered by status; paginated."""
    who = gate(request, "promises", PAGES["promises"])
    if isinstance(who, Response):
        return who
    status = request.query_params.get("status") or None
    if status not in (None, "pending", "kept", "broken", "cancelled"):
        status = None
    page_no = max(1, _int(request.query_params.get("page")) or 1)
    found = _with_db(
        request,
        lambda s: promises_api.list_promises(
            who,
            s,
            PageParams(CALLS_PER_PAGE, (page_no - 1) * CALLS_PER_PAGE),
            status=status,  # type: ignore[arg-type]
            due_from=None,
            due_to=None,
            account_id=None,
            campaign_id=None,
        ),
    )
    pages = max(1, -(-found["total"] // CALLS_PER_PAGE))
    return render(
        request,
        "promises.html",
        who,
        "promises",
        found=found,
        status_filter=status or "",
        page_no=page_no,
        pages=pages,
    )


@pages.get("/ui/upload")
def upload_page(request: Request) -> Response:
    """Upload a call list (posted to ``/api/lists`` with upload progress)."""
    who = gate(request, "upload", PAGES["upload"])
    if isinstance(who, Response):
        return who
    return render(request, "upload.html", who, "upload")


@pages.get("/ui/lists/{list_id}/errors.csv")
def list_errors_csv(request: Request, list_id: int) -> Response:
    """The rejected rows of a list as CSV: line, reason, and the row as uploaded."""
    who = gate(request, "upload", STAFF)
    if isinstance(who, Response):
        return who

    def load(s: Session) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            found = lists_api.list_rows(
                who, s, list_id, PageParams(MAX_PAGE, len(items)), errors_only=True
            )
            items += found["items"]
            if not found["items"] or len(items) >= found["total"]:
                return items

    try:
        rows = _with_db(request, load)
    except ApiError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "error", "row"])
    for row in rows:
        raw = row["raw"]
        cells = ";".join(f"{k}={v}" for k, v in raw.items()) if isinstance(raw, dict) else raw
        writer.writerow([row["line_no"], row["error"], cells])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="list-{list_id}-errors.csv"'},
    )


@pages.get("/static/{path:path}")
def static(path: str) -> Response:
    """The dashboard's own scripts and styles (no CDN)."""
    file = (STATIC_DIR / path).resolve()
    if not file.is_relative_to(STATIC_DIR.resolve()) or not file.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(file, headers={"Cache-Control": "no-cache"})


router = APIRouter()
"""Everything the dashboard adds to the app: ``/api/live``, the pages and static files."""
router.include_router(live_router)
router.include_router(pages)
