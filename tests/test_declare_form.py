"""The /declare web form over HTTP: languages, errors with values kept, the result page."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(site: int, **overrides: str) -> list[tuple[str, str]]:
    fields = {
        "lang": "vi",
        "site_id": str(site),
        "kind": "visitor",
        "full_name": "Nguyễn Văn An",
        "phone": "0912345678",
        "national_id": "",
        "organisation": "",
        "host_name": "Trần Thị Bình",
        "purpose": "Họp",
        "contact_f0": "no",
        "contact_f1": "no",
        "travel_areas": "",
        "vaccination_doses": "2",
        "last_test_kind": "none",
    } | overrides
    return [*fields.items(), ("symptoms", "none")]


async def post(client: Client, pairs: list[tuple[str, str]] | bytes) -> tuple[int, str]:
    data = pairs if isinstance(pairs, bytes) else urlencode(pairs).encode("ascii")
    resp = await client.post("/declare", data=data, headers=FORM)
    return resp.status, await resp.text()


async def test_form_in_vietnamese_and_english(client: Client, site_id: int) -> None:
    resp = await client.get("/declare")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<html lang="vi">' in page and "Khai báo y tế" in page
    assert "<script" not in page and 'name="viewport"' in page
    assert f'<option value="{site_id}" selected>' in page  # the only site is preselected
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    en = await (await client.get(f"/declare?lang=en&site={site_id}")).text()
    assert '<html lang="en">' in en and "Health declaration" in en
    css = await client.get("/static/declare.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await client.get("/static/nothing.css")).status == 404


async def test_errors_are_shown_in_vietnamese_with_values_kept(
    client: Client, site_id: int
) -> None:
    pairs = [p for p in form(site_id, phone="12345") if p[0] not in ("contact_f1", "symptoms")]
    status, page = await post(client, pairs)
    assert status == 422
    assert "Số điện thoại di động gồm 10 chữ số" in page
    assert 'value="12345"' in page and 'value="Nguyễn Văn An"' in page
    assert re.search(r'id="contact_f1-error">Vui lòng điền thông tin này<', page)
    assert re.search(r'id="symptoms-error">Vui lòng điền thông tin này<', page)
    assert 'value="no" checked' in page  # contact_f0 kept


async def test_unknown_site_and_test_fields_errors(client: Client, site_id: int) -> None:
    status, page = await post(client, form(site_id, site_id="999999", lang="en"))
    assert status == 422 and re.search(r'id="site_id-error">No such site<', page)
    status, page = await post(client, form(site_id, last_test_kind="pcr", lang="en"))
    assert status == 422
    assert 'id="last_test_result-error"' in page and 'id="last_test_taken_at-error"' in page


async def test_success_page_shows_the_qr_and_escapes_the_name(client: Client, site_id: int) -> None:
    status, page = await post(client, form(site_id, full_name="<script>alert(1)</script> An"))
    assert status == 200, page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; An" in page
    assert "Đủ điều kiện vào trụ sở" in page
    match = re.search(
        r'<img class="qr" src="(/api/v1/passes/([0-9a-f-]{36})/qr\.png\?key=[\w-]{22})"', page
    )
    assert match, page
    png_url, pass_id = match.groups()
    png_url = html.unescape(png_url)
    assert f'href="{match.group(1)}" download="pass-{pass_id}.png"' in page
    printable = re.search(rf'href="(/passes/{pass_id}/print\?key=[\w-]{{22}})&amp;lang=vi"', page)
    assert printable, page
    assert (await client.get(png_url)).status == 200

    printed = await client.get(printable.group(1) + "&lang=en")
    text = await printed.text()
    assert printed.status == 200 and "Entry pass" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; An" in text and "<script>" not in text
    assert re.search(rf'src="/api/v1/passes/{pass_id}/qr.svg\?key=[\w-]{{22}}"', text)
    missing = await client.get("/passes/00000000-0000-4000-8000-000000000000/print")
    assert missing.status == 404


async def test_review_result_has_reasons_and_no_qr(client: Client, site_id: int) -> None:
    pairs = [p for p in form(site_id, lang="en") if p[0] != "symptoms"] + [("symptoms", "cough")]
    status, page = await post(client, pairs)
    assert status == 200
    assert "A health officer needs to review this" in page
    assert "You reported symptoms" in page and 'class="qr"' not in page
    # Not valid until anything: awaiting review until a time, and no pass yet.
    assert "Valid until" not in page and 'class="valid"' not in page
    assert "<dt>Awaiting review until</dt>" in page and "No pass yet" in page


async def test_rejected_and_review_results_never_look_valid(client: Client, site_id: int) -> None:
    status, rejected = await post(client, form(site_id, contact_f0="yes"))
    assert status == 200 and "Chưa thể vào trụ sở" in rejected
    assert "Có giá trị đến" not in rejected and "Chờ duyệt đến" not in rejected
    assert "Không có mã QR ra vào" in rejected and 'class="qr"' not in rejected
    pairs = [p for p in form(site_id) if p[0] != "symptoms"] + [("symptoms", "cough")]
    status, review = await post(client, pairs)
    assert status == 200 and "Có giá trị đến" not in review
    assert re.search(r'<dt>Chờ duyệt đến</dt>\s*<dd class="review-until">\d\d:\d\d ', review)
    # Only a cleared result says how long it is valid.
    status, cleared = await post(client, form(site_id, phone="0912345679"))
    assert status == 200
    assert re.search(r'<dt>Có giá trị đến</dt>\s*<dd class="valid">\d\d:\d\d ', cleared)


async def test_broken_bytes_and_odd_forms_are_not_500(client: Client, site_id: int) -> None:
    raw = urlencode(form(site_id)).encode("ascii").replace(b"full_name=", b"full_name=%FF%FE")
    status, page = await post(client, raw)
    assert status == 422 and "Nội dung có ký tự lỗi" in page
    # Both are kept in the form's language link, broken bytes and all.
    sent = urlencode(form(site_id)).encode("ascii")
    for raw in (sent.replace(b"site_id=", b"site_id=%FF"), sent + b"&redeclare_key=%FF"):
        status, page = await post(client, raw)
        assert status == 422 and 'hreflang="en"' in page, page
    status, _ = await post(client, b"")
    assert status == 422
    status, _ = await post(client, b"&".join([b"a=1"] * 500))
    assert status == 413
    status, _ = await post(client, form(site_id, vaccination_doses="many", kind="alien"))
    assert status == 422
    resp = await client.post("/declare", json={"a": 1})
    assert resp.status == 415
