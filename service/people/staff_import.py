"""Importing staff from CSV: all rows or none.

Columns (a header row, any order): full_name, phone, national_id, organisation,
position, risk_level. Each row needs a phone or a national ID; a row matching an
existing person (by phone or national ID) updates them and makes them staff. Every bad
row is reported with its line and field; if there is any, nothing is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator
from tqdm import tqdm

from service.events.log import NewEvent, append_event
from service.people.fields import (
    Name,
    Organisation,
    national_id_field,
    phone_field,
)
from service.people.records import IdentityConflict, find_person
from service.web.field_errors import field_errors
from service.web.spreadsheet import csv_records
from service.web.text import blank_to_none

COLUMNS = ("full_name", "phone", "national_id", "organisation", "position", "risk_level")
MAX_ROWS = 100_000


class StaffRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    full_name: Name
    phone: Annotated[str | None, BeforeValidator(blank_to_none)] = None
    national_id: Annotated[str | None, BeforeValidator(blank_to_none)] = None
    organisation: Annotated[Organisation | None, BeforeValidator(blank_to_none)] = None
    position: Annotated[Name | None, BeforeValidator(blank_to_none)] = None  # 120, as the column
    risk_level: Literal["very_high", "high", "medium", "low"]

    _phone = field_validator("phone")(phone_field)
    _national_id = field_validator("national_id")(national_id_field)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    code: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason} ({self.code})"


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_rows(text: Iterable[str]) -> tuple[list[tuple[int, StaffRow]], list[RowError]]:
    """Validate every row (pure); return the good ones with their line and all errors."""
    reader = csv.reader(text)
    header, header_error = _header(reader)
    if header_error is not None:
        return [], [header_error]
    good: list[tuple[int, StaffRow]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}  # "phone:…" or "national_id:…" -> the first line that had it

    def unreadable(line: int, detail: str) -> None:
        errors.append(RowError(line, "row", "csv_error", detail))

    for line, record in csv_records(reader, unreadable):
        if len(good) + len(errors) >= MAX_ROWS:
            errors.append(RowError(line, "row", "too_many_rows", f"At most {MAX_ROWS} rows"))
            break
        row, row_errors = _row(line, header, record)
        if row is not None:
            row_errors = _duplicates(line, row, seen)
        errors += row_errors
        if row is not None and not row_errors:
            good.append((line, row))
    return good, errors


def _header(reader: Iterator[list[str]]) -> tuple[list[str], RowError | None]:
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        return [], RowError(1, "header", "missing", "The file is empty")
    except csv.Error as e:
        return [], RowError(1, "header", "csv_error", str(e))
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        reason = f"Columns must be {', '.join(COLUMNS)}"
        details = [f"missing: {', '.join(missing)}"] if missing else []
        details += [f"unknown: {', '.join(unknown)}"] if unknown else []
        return [], RowError(1, "header", "bad_columns", "; ".join([reason, *details]))
    return header, None


def _row(line: int, header: list[str], record: list[str]) -> tuple[StaffRow | None, list[RowError]]:
    """One record as a StaffRow, or the reasons it is not one."""
    if len(record) != len(header):
        detail = f"Expected {len(header)} fields, got {len(record)}"
        return None, [RowError(line, "row", "column_count", detail)]
    try:
        row = StaffRow.model_validate(dict(zip(header, record, strict=True)))
    except pydantic.ValidationError as e:
        return None, [RowError(line, f["field"], f["code"], f["reason"]) for f in field_errors(e)]
    if row.phone is None and row.national_id is None:
        reason = "Give a phone number or a national ID (CMND/CCCD)"
        return None, [RowError(line, "phone", "phone_or_national_id_required", reason)]
    return row, []


def _duplicates(line: int, row: StaffRow, seen: dict[str, int]) -> list[RowError]:
    """A phone or national ID an earlier line of the same file already had."""
    errors = []
    for name, value in (("phone", row.phone), ("national_id", row.national_id)):
        if value is None:
            continue
        first = seen.setdefault(f"{name}:{value}", line)
        if first != line:
            errors.append(
                RowError(line, name, "duplicate", f"Same {name} as line {first} of this file")
            )
    return errors


UPSERT_STAFF_SQL = """
UPDATE people SET kind = 'staff', full_name = $2, phone = coalesce($3, phone),
                  national_id = coalesce($4, national_id), organisation = $5, position = $6,
                  risk_level = $7, updated_at = now()
WHERE id = $1
"""
INSERT_STAFF_SQL = """
INSERT INTO people (kind, full_name, phone, national_id, organisation, position, risk_level)
VALUES ('staff', $1, $2, $3, $4, $5, $6)
"""


async def import_staff(
    conn: asyncpg.Connection,
    text: Iterable[str],
    *,
    actor: str = "cli:staff-import",
    progress: bool = False,
) -> ImportResult:
    """Validate and write every row in one transaction; write nothing if any row is bad."""
    try:
        return await _import(conn, text, actor=actor, progress=progress)
    except _Rollback as e:
        return e.result


async def _import(
    conn: asyncpg.Connection, text: Iterable[str], *, actor: str, progress: bool
) -> ImportResult:
    good, errors = parse_rows(text)
    result = ImportResult(rows=len(good) + len({e.line for e in errors}), errors=errors)
    async with conn.transaction():
        for line, row in tqdm(good, desc="staff", unit="row", disable=not progress):
            try:
                found = await find_person(conn, phone=row.phone, national_id=row.national_id)
            except IdentityConflict:
                result.errors.append(
                    RowError(
                        line,
                        "national_id",
                        "identity_conflict",
                        "The phone number and the national ID belong to two different people",
                    )
                )
                continue
            values = (
                row.full_name,
                row.phone,
                row.national_id,
                row.organisation,
                row.position,
                row.risk_level,
            )
            if found is None:
                await conn.execute(INSERT_STAFF_SQL, *values)
                result.created += 1
            else:
                await conn.execute(UPSERT_STAFF_SQL, found.id, *values)
                result.updated += 1
        if result.errors:
            result.errors.sort(key=lambda e: e.line)
            result.created = result.updated = 0
            raise _Rollback(result)
        await append_event(
            conn,
            NewEvent(
                kind="admin",
                actor=actor,
                occurred_at=datetime.now(UTC),
                detail={
                    "action": "staff_import",
                    "created": result.created,
                    "updated": result.updated,
                },
            ),
        )
    return result


class _Rollback(Exception):
    def __init__(self, result: ImportResult) -> None:
        super().__init__("rolled back")
        self.result = result


async def import_staff_csv(
    conn: asyncpg.Connection, raw: bytes, *, progress: bool = False
) -> ImportResult:
    """Import a CSV file's bytes (UTF-8, with or without BOM); bad bytes are reported per row."""
    # surrogateescape: undecodable bytes become lone surrogates, which the text rules
    # reject as invalid_unicode on their own line instead of failing the whole file.
    text = io.StringIO(raw.decode("utf-8-sig", errors="surrogateescape"), newline="")
    return await import_staff(conn, text, progress=progress)
