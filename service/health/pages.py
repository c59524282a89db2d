"""The health desk's printable pages (tests due, a case report, the daily report): plain
HTML from the same data as the JSON, styled by /static/health-print.css, with no script
at all (the browser's own Print). Vietnamese by default, English with ?lang=en. Each is a
template that extends templates/health_print.html; this module holds their words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from service.web.pages import page

Lang = Literal["vi", "en"]

WORDS: dict[str, tuple[str, str]] = {
    "tests_due": ("Danh sách cần xét nghiệm", "Tests due"),
    "risk_very_high": ("Nguy cơ rất cao", "Very high risk"),
    "risk_high": ("Nguy cơ cao", "High risk"),
    "risk_medium": ("Nguy cơ trung bình", "Medium risk"),
    "risk_low": ("Nguy cơ thấp", "Low risk"),
    "cadence": ("Xét nghiệm trong vòng {n} ngày", "A test within {n} days"),
    "name": ("Họ tên", "Name"),
    "risk": ("Mức nguy cơ", "Risk level"),
    "phone": ("Điện thoại", "Phone"),
    "organisation": ("Đơn vị", "Organisation"),
    "position": ("Vị trí", "Position"),
    "last_negative": ("Âm tính gần nhất", "Last negative"),
    "covered_until": ("Có hiệu lực đến hết", "Covered until"),
    "state": ("Tình trạng", "State"),
    "overdue": ("Quá hạn", "Overdue"),
    "due": ("Đến hạn", "Due"),
    "done": ("Đã xét nghiệm", "Tested"),
    "none": ("Không có ai", "Nobody"),
    "date": ("Ngày", "Date"),
    "printed_at": ("In lúc", "Printed at"),
    "summary": ("Cần xét nghiệm: {due}; đã xét nghiệm: {done}", "Due: {due}; tested: {done}"),
    "case_report": ("Báo cáo ca bệnh", "Case report"),
    "case": ("Ca bệnh (F0)", "Case (F0)"),
    "onset": ("Ngày khởi phát", "Onset"),
    "window": ("Thời gian truy vết", "Traced window"),
    "recorded": ("Ghi nhận", "Recorded"),
    "note": ("Ghi chú", "Note"),
    "contacts": ("Người tiếp xúc (F1)", "Contacts (F1)"),
    "overlap": ("Thời gian tiếp xúc (phút)", "Overlap (minutes)"),
    "gates": ("Cổng", "Gates"),
    "first_overlap": ("Tiếp xúc đầu", "First overlap"),
    "last_overlap": ("Tiếp xúc cuối", "Last overlap"),
    "suspended": ("Đã tạm dừng thẻ", "Suspended"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "health_report": ("Báo cáo y tế hằng ngày", "Daily health report"),
    "entries": ("Lượt vào", "Entries"),
    "denials": ("Lượt từ chối", "Denials"),
    "reason": ("Lý do", "Reason"),
    "count": ("Số lượng", "Count"),
    "suspensions": ("Tạm dừng thẻ", "Suspensions"),
    "cause": ("Nguyên nhân", "Cause"),
    "new": ("Mới trong ngày", "New that day"),
    "cleared": ("Đã gỡ trong ngày", "Cleared that day"),
    "active": ("Còn hiệu lực cuối ngày", "In force at the end of the day"),
    "tests": ("Xét nghiệm theo chu kỳ", "Tests by cadence"),
    "cases_recorded": ("Ca bệnh ghi nhận", "Cases recorded"),
    "review_queue": ("Hàng chờ xét duyệt", "Review queue"),
    "waiting": ("Đang chờ", "Waiting"),
    "oldest": ("Lâu nhất (phút)", "Oldest (minutes)"),
    "median": ("Trung vị (phút)", "Median (minutes)"),
}


DAY_PATTERN = r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}$"  # the years a report can be of
Q_DAY: dict[str, Any] = {"type": "string", "format": "date", "pattern": DAY_PATTERN}


def _reportable(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(DAY_PATTERN, value):
        raise PydanticCustomError("report_date", "Expected a date YYYY-MM-DD from 1900 to 2099")
    return value


Day = Annotated[date, BeforeValidator(_reportable)]


class DayQuery(BaseModel):
    """A day, site time (default: today)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: Day | None = None


class DayPage(DayQuery):
    lang: Lang = "vi"


class ReportQuery(BaseModel):
    """A day, site time (required)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: Day


class ReportPage(ReportQuery):
    lang: Lang = "vi"


class LangQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lang: Lang = "vi"


def t(key: str, lang: Lang, **params: object) -> str:
    vi, en = WORDS[key]
    return (vi if lang == "vi" else en).format(**params)


def when(value: datetime | None) -> str:
    return value.strftime("%H:%M %d/%m/%Y") if value else ""


def day_text(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def printable(
    request: web.Request,
    lang: Lang,
    template: str,
    title: str,
    printed: datetime,
    context: Mapping[str, Any],
) -> web.Response:
    """A printable report: its template (which extends health_print.html) with the
    catalogue's words in ``lang``."""
    words = {"lang": lang, "t": functools.partial(t, lang=lang), "title": title}
    return page(request, template, words | {"printed": when(printed), **context})
