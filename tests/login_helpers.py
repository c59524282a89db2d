"""Logging in through the console's form, as many visitors at once."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


class Browser:
    """One visitor of the login form, with a cookie jar of its own (the form's CSRF
    cookie is per visitor, so concurrent logins need one each)."""

    def __init__(self, client: Client, address: str | None = None) -> None:
        self.client = client
        self.headers = {"X-Forwarded-For": address} if address else {}
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self, username: str, password: str) -> aiohttp.ClientResponse:
        url = self.client.make_url("/console/login")
        async with self.session.get(url, headers=self.headers) as form:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text())
        assert token is not None
        resp = await self.session.post(
            url,
            data={"csrf_token": token.group(1), "username": username, "password": password},
            headers=self.headers,
            allow_redirects=False,
        )
        await resp.read()
        return resp


def visitor(browsers: list[Browser], client: Client, address: str | None = None) -> Browser:
    browsers.append(Browser(client, address))
    return browsers[-1]
