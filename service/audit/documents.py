"""How exports are written (JSON values, formula-safe CSV, file names) and recorded:
every export appends an `export` event before its first byte goes out."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.events.log import NewEvent, append_event
from service.platform.errors import ApiError
from service.web.spreadsheet import safe_cell

logger = logging.getLogger(__name__)


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(json_value(value))
    return safe_cell(text)


class CsvChunks:
    """CSV text for spreadsheets: the csv module's quoting, formulas defused."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in values])

    def take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


def csv_document(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = CsvChunks()
    out.row(header)
    for row in rows:
        out.row(row)
    return "\ufeff".encode() + out.take()


def attachment(name: str, fmt: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f'attachment; filename="{name}-{stamp}.{fmt}"'


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "json": "application/json; charset=utf-8",
}


async def record_export(
    conn: asyncpg.Connection,
    actor: str,
    *,
    site_id: int | None,
    detail: dict[str, Any],
    person_id: int | None = None,
) -> int:
    try:
        appended = await append_event(
            conn,
            NewEvent(
                kind="export",
                actor=actor,
                occurred_at=datetime.now(UTC),
                site_id=site_id,
                person_id=person_id,
                detail=detail,
            ),
        )
    except LookupError:  # no chain: the site filter names no site
        raise ApiError(404, "site_not_found", f"No site with id {site_id}.") from None
    return appended.id
