"""A thin HTTP client for the CLI: MOORAGE_URL + MOORAGE_TOKEN, errors become one line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from moorage.errors import MoorageError

DEFAULT_URL = "http://127.0.0.1:8700"


class CliError(MoorageError):
    """A failure the CLI reports as one line; ``status`` is the HTTP status when the server
    answered it (``code`` is then the server's error code)."""

    code = "cli_error"
    status: int | None = None


class ServerError(CliError):
    """An error answer of the server: ``"<message> (<status> <code>)"``."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            error = response.json()["error"]
            message, code = str(error["message"]), str(error["code"])
        except (ValueError, KeyError, TypeError):
            message, code = f"HTTP {response.status_code} from {response.request.url.path}", ""
        super().__init__(
            f"{message} ({response.status_code} {code})" if code else message,
            code=code or "http_error",
        )
        self.status = response.status_code
        self.server_message = message


class Client:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = (url or os.environ.get("MOORAGE_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("MOORAGE_TOKEN")
        if not token:
            raise CliError(
                "MOORAGE_TOKEN is not set; create one with 'moorage token create --username U'"
            )
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach Moorage at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise ServerError(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def raw_post(self, path: str, body: Any, *, headers: dict[str, str]) -> Any:
        """POST with extra headers (a restore's confirmation)."""
        try:
            response = self._http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach Moorage at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise ServerError(response)
        return response.json()

    def request_raw(
        self,
        method: str,
        path: str,
        *,
        content: Any,
        headers: dict[str, str],
    ) -> Any:
        """Send a streamed body (an archive upload); answer its JSON."""
        try:
            response = self._http.request(
                method, path, content=content, headers=headers, timeout=None
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach Moorage at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise ServerError(response)
        return response.json()

    @contextmanager
    def stream(self, method: str, path: str) -> Iterator[httpx.Response]:
        """A streamed answer (an archive download); errors become one line."""
        try:
            with self._http.stream(method, path, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(response)
                yield response
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach Moorage at {self.url}: {exc}") from None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
