"""Importing a lab's official test results from CSV (`checkin-gateway tests import`): all
rows or none.

Columns (a header row, any order): `kind` (pcr | rapid), `taken_at` (ISO 8601; without
an offset, Vietnam time), `result` (negative | positive), `source` (the lab), and the
person by one or more of `person_id`, `phone`, `national_id` (at least one of these
columns, and a value in each row; several must name the same person). Every row is
checked first (format, the person, duplicates in the file) and every error reported
with its row (the file's line), column, code and words in English and Vietnamese; if
there is any, nothing is written. Then, in one transaction, each result is recorded
by the code that records `POST /api/v1/tests` (service.health.official_tests), so it
sets off the same: a positive records a case at once, a negative clears the contact
suspensions it satisfies.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from tqdm import tqdm

from service.declarations.model import DECLARATION_TZ
from service.events.log import NewEvent, append_event
from service.health.cases import case_sites
from service.health.official_tests import TestIn, record_test
from service.people.fields import normalize_national_id, normalize_phone
from service.people.records import find_person, person_name
from service.people.scope import known_at_site
from service.platform.errors import ApiError
from service.web.auth import Principal, Role
from service.web.field_errors import field_error, field_errors
from service.web.spreadsheet import csv_records
from service.web.text import blank_to_none

ID_COLUMNS = ("person_id", "phone", "national_id")
RESULT_COLUMNS = ("kind", "taken_at", "result", "source")
COLUMNS = ID_COLUMNS + RESULT_COLUMNS
MAX_ROWS = 100_000
ACTOR = "cli:tests-import"
CellId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a bigint key, as text in a cell
# The command acts as an admin of every site (or, with --site, of that one).
CLI = Principal(token_id=0, role=Role.ADMIN, site_id=None, gate_id=None, label="tests-import")


def _naive_is_vietnam(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return value  # the model says why
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=DECLARATION_TZ)
    return value


class ImportRow(BaseModel):
    """One row as written: the person's identifiers and the result (judged by TestIn)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: Annotated[CellId | None, BeforeValidator(blank_to_none)] = None
    phone: Annotated[str | None, BeforeValidator(blank_to_none)] = None
    national_id: Annotated[str | None, BeforeValidator(blank_to_none)] = None
    kind: Literal["pcr", "rapid"]
    taken_at: Annotated[datetime, BeforeValidator(_naive_is_vietnam)]
    result: Literal["negative", "positive"]
    source: str


@dataclass(frozen=True)
class RowError:
    row: int  # the line in the file (the header is 1)
    column: str
    code: str
    reason_en: str
    reason_vi: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column}: {self.reason_vi} / {self.reason_en} ({self.code})"


def row_error(line: int, where: str, code: str, **ctx: Any) -> RowError:
    words = field_error(where, code, ctx)
    return RowError(line, where, code, words["reason_en"], words["reason_vi"])


@dataclass
class ImportResult:
    recorded: int = 0
    positives: int = 0
    cases: int = 0
    cleared: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Checked:
    row: int
    test: TestIn
    sites: list[int]


def _header(reader: Any) -> tuple[list[str] | None, RowError | None]:
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        return None, row_error(1, "header", "empty_file")
    except csv.Error as e:
        return None, row_error(1, "header", "csv_error", detail=str(e))
    columns = ", ".join(RESULT_COLUMNS) + " and one or more of " + ", ".join(ID_COLUMNS)
    if (
        any(c not in header for c in RESULT_COLUMNS)
        or not any(c in header for c in ID_COLUMNS)
        or any(h not in COLUMNS for h in header)
        or len(set(header)) != len(header)
    ):
        return None, row_error(1, "header", "bad_columns", columns=columns)
    return header, None


def parse_rows(text: Iterable[str]) -> tuple[list[tuple[int, ImportRow]], list[RowError]]:
    """Check every row's format (pure): the good ones with their line, and all errors."""
    reader = csv.reader(text)
    header, bad = _header(reader)
    if header is None:
        return [], [bad] if bad else []
    good: list[tuple[int, ImportRow]] = []
    errors: list[RowError] = []

    def unreadable(line: int, detail: str) -> None:
        errors.append(row_error(line, "row", "csv_error", detail=detail))

    for line, record in csv_records(reader, unreadable):
        if len(good) + len({e.row for e in errors}) >= MAX_ROWS:
            errors.append(row_error(line, "row", "too_many_rows", max_rows=MAX_ROWS))
            break
        if len(record) != len(header):
            errors.append(
                row_error(line, "row", "column_count", expected=len(header), got=len(record))
            )
            continue
        try:
            good.append((line, ImportRow.model_validate(dict(zip(header, record, strict=True)))))
        except pydantic.ValidationError as e:
            errors += [_from_field(line, f) for f in field_errors(e)]
    return good, errors


def _from_field(line: int, error: dict[str, str]) -> RowError:
    return RowError(line, error["field"], error["code"], error["reason_en"], error["reason_vi"])


async def _person(conn: asyncpg.Connection, line: int, row: ImportRow) -> int | RowError:
    """The one person the row's identifiers name."""
    found: dict[str, int] = {}
    if row.person_id is not None:
        if await person_name(conn, row.person_id) is None:
            return row_error(line, "person_id", "person_not_found", column="person_id")
        found["person_id"] = row.person_id
    for column, raw, normal in (
        ("phone", row.phone, normalize_phone),
        ("national_id", row.national_id, normalize_national_id),
    ):
        if raw is None:
            continue
        try:
            value = normal(raw)
        except ValueError:
            return row_error(line, column, f"{column}_format")
        if column == "phone":
            person = await find_person(conn, phone=value, national_id=None)
        else:
            person = await find_person(conn, phone=None, national_id=value)
        if person is None:
            return row_error(line, column, "person_not_found", column=column)
        found[column] = person.id
    if not found:
        return row_error(line, "person_id", "person_required")
    if len(set(found.values())) > 1:
        return row_error(line, list(found)[-1], "identity_conflict")
    return next(iter(found.values()))


async def _check(
    conn: asyncpg.Connection, line: int, row: ImportRow, site_id: int | None
) -> Checked | list[RowError]:
    person_id = await _person(conn, line, row)
    if isinstance(person_id, RowError):
        return [person_id]
    try:
        test = TestIn(
            person_id=person_id,
            kind=row.kind,
            taken_at=row.taken_at,
            result=row.result,
            source=row.source,
            site_id=site_id,
        )
    except pydantic.ValidationError as e:
        return [_from_field(line, f) for f in field_errors(e)]
    if site_id is not None and not await known_at_site(conn, person_id, site_id):
        return [row_error(line, "person_id", "not_known_at_site", site_id=site_id)]
    return Checked(line, test, await case_sites(conn, CLI, person_id, site_id))


async def check_rows(
    conn: asyncpg.Connection, text: Iterable[str], *, site_id: int | None
) -> tuple[list[Checked], list[RowError]]:
    """Every row checked against the database too (nothing written)."""
    good, errors = parse_rows(text)
    checked: list[Checked] = []
    first: dict[tuple[int, str, datetime], int] = {}
    for line, row in good:
        done = await _check(conn, line, row, site_id)
        if isinstance(done, list):
            errors += done
            continue
        key = (done.test.person_id, done.test.kind, done.test.taken_at)
        if (seen := first.setdefault(key, line)) != line:
            errors.append(row_error(line, "taken_at", "duplicate_row", first=seen))
            continue
        checked.append(done)
    return checked, sorted(errors, key=lambda e: e.row)


async def import_tests(
    conn: asyncpg.Connection,
    text: Iterable[str],
    *,
    site_id: int | None = None,
    progress: bool = False,
    now: datetime | None = None,
) -> ImportResult:
    """Check every row, then record all of them in one transaction, or none."""
    now = now or datetime.now(UTC)
    async with conn.transaction():
        checked, errors = await check_rows(conn, text, site_id=site_id)
        if errors:
            return ImportResult(errors=errors)
        result = ImportResult()
        for item in tqdm(checked, desc="tests", unit="row", disable=not progress):
            try:
                out = await record_test(conn, item.test, sites=item.sites, actor=ACTOR, now=now)
            except ApiError as e:  # nothing was written for it; the transaction is rolled back
                raise _Rollback(row_error(item.row, "row", "not_recorded", detail=e.message)) from e
            result.recorded += 1
            result.positives += item.test.result == "positive"
            result.cases += len(out["cases"])
            result.cleared += len(out["cleared"])
        await append_event(
            conn,
            NewEvent(
                kind="admin",
                actor=ACTOR,
                occurred_at=now,
                site_id=site_id,
                detail={
                    "action": "tests_import",
                    "recorded": result.recorded,
                    "positives": result.positives,
                    "cases": result.cases,
                    "cleared": result.cleared,
                },
            ),
        )
    return result


class _Rollback(Exception):
    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


async def import_tests_csv(
    conn: asyncpg.Connection, raw: bytes, *, site_id: int | None = None, progress: bool = False
) -> ImportResult:
    """Import a CSV file's bytes (UTF-8, with or without BOM)."""
    # surrogateescape: undecodable bytes become lone surrogates, which the text rules
    # reject on their own row instead of failing the whole file.
    text = io.StringIO(raw.decode("utf-8-sig", errors="surrogateescape"), newline="")
    try:
        return await import_tests(conn, text, site_id=site_id, progress=progress)
    except _Rollback as e:
        return ImportResult(errors=[e.error])
