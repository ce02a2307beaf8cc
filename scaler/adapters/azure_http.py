"""Guarded reading from Azure: a size cap on every answer, one pager for every list, and the
screens every value read from Azure passes before it is believed.

**Answers.** Every Azure client of the daemon sends through a ``requests`` session that reads
an answer up to ``MAX_ANSWER_BYTES`` and refuses a longer one (``capped_transport``): an ARM
list page is at most a few megabytes (1,000 scale sets of ~3.5 KB), and a gateway or a fake
that streams for ever must not take the daemon's memory with it.

**Lists.** ARM answers a list with ``{"value": [...], "nextLink": "<absolute URL>"}`` and the
next page is a GET of ``nextLink`` (``VirtualMachineScaleSets_ListAll``: "Use nextLink property
in the response to get the next page", https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/list-all).
The SDK's pagers follow any ``nextLink`` with the bearer token. ``ArmPager`` is the one reader
of every list the daemon makes (usages, scale sets, scale set instances, VMs, SKUs, autoscale
settings), with the rules the Pexip client follows for ``meta.next``:

- a ``nextLink`` is followed only when it names the scheme, host and port of the first page's
  URL, ``https`` only, with no user name or password in it (the token goes nowhere else);
- a link already read is a loop: an error, not another request;
- at most ``[azure] max_pages`` pages, within ``[azure] read_deadline_seconds`` in all;
- it hands out each page's items as plain JSON objects (``dict``), so no SDK model is built
  for what the daemon does not read (a scale set body is ~3.5 KB; building its model cost more
  CPU than the rest of the tick).

Pages go through the SDK client's own pipeline (``send_request``: credential, the deadline
retry policy, redirects, the rate-limit hook), so what is true of one SDK call is true of a
page: an error status raises what the SDK raises (``map_error``, else ``HttpResponseError``)
and the caller's ``_Calls`` translates it.

**Values.** ``capacity``, ``etag``, ``state_name``, ``instance_id`` and ``name`` judge one
value each; an unusable value is a ``PermanentError`` (code ``UnusableAnswer``) that fails the
read of the pool it belongs to, never the others.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse

from scaler.errors import PermanentError, TransientError
from scaler.redact import show_url

MAX_ANSWER_BYTES = 32 << 20
"""Most bytes of one answer read from Azure (32 MiB); a longer one is refused unread."""

READ_WITHIN = "cvi_autoscaler_read_within"
"""Pipeline option: seconds within which a call must be over (what is left of a list read's
deadline). ``DeadlineRetryPolicy`` takes the earlier of it and the call's own deadline (and
removes it before the transport). Relative, so that the pager's clock (a test's stepped one)
and the pipeline's real one never have to agree."""

MAX_SCALE_SET_CAPACITY = 1000
"""A scale set holds 0–1,000 VMs: "the scale set can be composed of multiple placement groups
and has a range of 0-1,000 VMs"
(https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups).
A ``sku.capacity`` outside it is not a reading."""

UNUSABLE = "UnusableAnswer"
"""``AdapterError.code`` of an answer that came but holds a value that cannot be believed."""


class AnswerTooLarge(requests.RequestException):
    """An answer longer than the cap (a ``requests`` error, so azure-core maps it like a
    connection cut short: ``ServiceResponseError``, transient)."""


class CappedSession(requests.Session):
    """A ``requests`` session that reads each answer up to ``limit`` bytes.

    ``requests`` reads a whole answer into memory unless asked to stream. Here every answer is
    streamed from the socket and read in chunks until it ends or passes the limit; a declared
    ``Content-Length`` over the limit is refused before reading anything. An answer the caller
    itself streams (``stream=True``) is left to the caller."""

    def __init__(self, limit: int = MAX_ANSWER_BYTES) -> None:
        super().__init__()
        self.limit = limit

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        streamed = bool(kwargs.get("stream"))
        kwargs["stream"] = True
        response = super().send(request, **kwargs)
        if streamed:
            return response
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.limit:
            response.close()
            raise self._too_large(request, f"Content-Length {declared}")
        # the whole body within the read timeout (``requests`` applies it per socket read:
        # an answer trickling a byte at a time would hold the call without end)
        timeout = kwargs.get("timeout")
        budget: float | None = timeout[1] if isinstance(timeout, tuple) else timeout
        deadline = time.monotonic() + float(budget) if budget else None
        body = bytearray()
        for chunk in response.iter_content(1 << 16):
            body += chunk
            if len(body) > self.limit:
                response.close()
                raise self._too_large(request, f"more than {self.limit} bytes")
            if deadline is not None and time.monotonic() > deadline:
                response.close()
                raise requests.exceptions.ReadTimeout(
                    f"the answer did not arrive within {budget:g} s", request=request
                )
        response._content = bytes(body)  # what ``Response.content`` keeps once read
        return response

    def _too_large(self, request: requests.PreparedRequest, what: str) -> AnswerTooLarge:
        mib = self.limit / (1 << 20)
        return AnswerTooLarge(
            f"the answer is too large ({what}; the limit is {mib:g} MiB): not read",
            request=request,
        )


def capped_transport(
    *, verify: str | bool, connection_timeout: float, read_timeout: float
) -> RequestsTransport:
    """A transport of its own for one SDK client (a client closes its transport), reading
    through ``CappedSession``."""
    return RequestsTransport(
        session=CappedSession(),
        session_owner=True,
        connection_verify=verify,
        connection_timeout=connection_timeout,
        read_timeout=read_timeout,
    )


class SendsRequests(Protocol):
    """An SDK client: ``ComputeManagementClient``, ``MonitorManagementClient``…"""

    def send_request(self, request: HttpRequest, **kwargs: Any) -> HttpResponse: ...


_ERROR_MAP: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
}
"""As the SDK's own operations map an error status."""


class ArmPager:
    """Reads ARM lists page by page under the rules of the module docstring.

    ``base_url`` is the configured ``[azure] resource_manager_url``: a list's first page is
    asked there, and its scheme, host and port are the only ones a ``nextLink`` may name."""

    def __init__(
        self,
        *,
        base_url: str,
        max_pages: int,
        deadline_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._origin = _origin(self._base)
        self.max_pages = max_pages
        self.deadline_seconds = deadline_seconds
        self._monotonic = monotonic

    def items(
        self,
        client: SendsRequests,
        operation: str,
        path: str,
        params: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        """Every item of the list at ``path`` (quoted by the caller), all pages read."""
        return [item for page in self.pages(client, operation, path, params) for item in page]

    def pages(
        self,
        client: SendsRequests,
        operation: str,
        path: str,
        params: Mapping[str, str],
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page's items in turn. ``params`` must carry the ``api-version``; it is sent
        again with every ``nextLink`` (as the SDK's pagers do), the link's other query kept."""
        api_version = params.get("api-version", "")
        url = self._base + path
        query: dict[str, str] = dict(params)
        deadline = self._monotonic() + self.deadline_seconds
        seen: set[str] = set()
        pages = 0
        while True:
            key = _page_key(url, query)
            if key in seen:
                raise PermanentError(
                    f"{operation}: nextLink loops back to a page already read "
                    f"({show_url(url)}); not followed",
                    operation=operation,
                    code="NextLinkLoop",
                )
            seen.add(key)
            if pages >= self.max_pages:
                raise PermanentError(
                    f"{operation}: more than {self.max_pages} pages ([azure] max_pages); "
                    f"the next was {show_url(url)}",
                    operation=operation,
                    code="TooManyPages",
                )
            left = deadline - self._monotonic()
            if left <= 0:
                raise TransientError(
                    f"{operation}: not read within {self.deadline_seconds:g} s "
                    f"([azure] read_deadline_seconds) after {pages} pages",
                    operation=operation,
                    code="ReadDeadline",
                )
            request = HttpRequest("GET", url, params=query, headers={"Accept": "application/json"})
            response = client.send_request(request, **{READ_WITHIN: left})
            pages += 1
            body = json_answer(response, obj=False)
            # JSON of another shape is an unreadable answer, classed by its status (``_Calls``)
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise TypeError("the answer is not a list (no 'value' array)")
            items = body["value"]
            if not all(isinstance(item, dict) for item in items):
                raise TypeError("an item of 'value' is not an object")
            yield items
            link = body.get("nextLink")
            if link is None or link == "":
                return
            url, query = self._next(operation, link, url, api_version)

    def _next(
        self, operation: str, link: object, current: str, api_version: str
    ) -> tuple[str, dict[str, str]]:
        """The next page's URL (without query) and query, or ``PermanentError`` when the link
        may not be followed."""
        if not isinstance(link, str) or len(link) > 8192 or not link.isprintable():
            raise PermanentError(
                f"{operation}: nextLink is not a URL, got {type(link).__name__}",
                operation=operation,
                code="NextLinkRefused",
            )
        absolute = urljoin(current, link.strip())
        parts = urlsplit(absolute)
        try:
            origin = _origin(absolute)
        except ValueError:
            origin = None
        if (
            origin != self._origin
            or parts.scheme.lower() != "https"
            or parts.username is not None
            or parts.password is not None
        ):
            raise PermanentError(
                f"{operation}: nextLink {show_url(absolute)!r} leaves {show_url(self._base)} "
                "(another scheme, host, port or user; not followed: the bearer token goes "
                "nowhere else)",
                operation=operation,
                code="NextLinkRefused",
            )
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if api_version:
            query["api-version"] = api_version
        return absolute.split("?", 1)[0].split("#", 1)[0], query


def json_answer(response: HttpResponse, *, obj: bool = True) -> Any:
    """The JSON of a 200 answer; another status raises what the SDK raises (``map_error``,
    else ``HttpResponseError``: the caller's ``_Calls`` translates it), and an error body that
    is not JSON (a gateway's HTML page) an unreadable answer classed by its status. With
    ``obj``, an answer that is not a JSON object is unreadable too (``TypeError``)."""
    if response.status_code != 200:
        map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
        response.json()
        raise HttpResponseError(response=response)
    body = response.json()
    if obj and not isinstance(body, dict):
        raise TypeError(f"the answer is {type(body).__name__}, not an object")
    return body


def segment(value: str) -> str:
    """One path segment of an ARM URL, quoted (a name never adds a segment of its own)."""
    return quote(value, safe="")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port  # raises ValueError for a port that is not a number
    if port is None:
        port = 443 if scheme == "https" else 80 if scheme == "http" else 0
    return scheme, (parts.hostname or "").lower(), port


def _page_key(url: str, query: Mapping[str, str]) -> str:
    """What makes two page requests the same (the api-version aside)."""
    rest = sorted((k, v) for k, v in query.items() if k.lower() != "api-version")
    return url.lower().rstrip("/") + "?" + urlencode(rest)


# -- screens ------------------------------------------------------------------------------------


def unusable(operation: str, what: str, value: object) -> PermanentError:
    """The error of a value that cannot be believed (the value shown short and printable)."""
    return PermanentError(
        f"{operation}: {what}, got {short(value)}", operation=operation, code=UNUSABLE
    )


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, printable characters only, at most ``limit`` of them."""
    text = "".join(c for c in repr(value) if c.isprintable())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def whole(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is a JSON integer (not a boolean, not a float) within [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def capacity(value: object, operation: str, what: str) -> int:
    """A scale set's ``sku.capacity``: an integer 0–1,000 (``MAX_SCALE_SET_CAPACITY``).

    ``-3`` would read as 3 instances fewer than there are (a scale-in of busy instances),
    ``true`` as 1, ``5000`` or ``1e9`` as far above the pool's max (a "scale-in" that skips
    the quota check): each is an unusable read, not a number to clamp."""
    if not whole(value, 0, MAX_SCALE_SET_CAPACITY):
        raise unusable(
            operation,
            f"{what} sku.capacity is not an integer within 0-{MAX_SCALE_SET_CAPACITY}",
            value,
        )
    assert isinstance(value, int)
    return value


_ETAG = re.compile(r'^(W/)?"?[\x21\x23-\x7e]{1,256}"?$')


def etag(value: object, operation: str, what: str) -> str | None:
    """An ``etag`` (sent back as ``If-Match``): ``None``, or a short printable ASCII token
    (an entity tag, RFC 9110 §8.8.3) — never a header of its own (no CR/LF) or a number."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ETAG.fullmatch(value):
        raise unusable(operation, f"{what} etag is not an entity tag", value)
    return value


_STATE = re.compile(r"^[A-Za-z][A-Za-z ]{0,63}$")


def state_name(value: object, operation: str, what: str, default: str = "Succeeded") -> str:
    """A ``provisioningState`` (``Succeeded``, ``Updating``, ``Deleting``…): a word of
    letters; missing is ``default``. Anything else (a number, an object, a control
    character) is unusable."""
    if value is None:
        return default
    if not isinstance(value, str) or not _STATE.fullmatch(value):
        raise unusable(operation, f"{what} provisioningState is not a state name", value)
    return value


_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def instance_id(value: object, operation: str, what: str) -> str:
    """A scale set instance's ``instanceId`` (decimal in a uniform scale set): a short name
    that can only ever be one path segment."""
    if not isinstance(value, str) or not _INSTANCE_ID.fullmatch(value):
        raise unusable(operation, f"{what} instanceId is not an instance id", value)
    return value


def name(value: object, operation: str, what: str) -> str:
    """A resource or VM size name: letters, digits and ``-_.()``, at most 128."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.()]{0,127}", value):
        raise unusable(operation, f"{what} is not a name", value)
    return value
