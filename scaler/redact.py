"""Text that may leave the process (logs, errors, ``validate``'s output) without secrets.

- ``show_url``: every URL in a text without its user name and password
  (``https://admin:S3CRET@host/`` → ``https://host/``);
- ``summarise_body``: an error answer's body as one line (an HTML page by its title);
- ``printable``: an outside value (a trace header field, an Azure answer's value) cut to its
  first printable characters, so a file such as ``/proc/self/environ`` read as a trace is
  never echoed whole.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*:)?//[^/?#@\s]*@")


def show_url(text: str) -> str:
    """``text`` with the user name and password of every URL in it left out (also a
    scheme-relative ``//user:pw@host``)."""
    return _USERINFO.sub(lambda m: f"{m.group(1) or ''}//", text)


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries a user name or password (``scheme://user:pw@host``)."""
    return _USERINFO.search(url) is not None


def printable(value: object, limit: int = 80) -> str:
    """``value`` as text, printable characters only, at most ``limit`` of them (``…`` marks
    a cut)."""
    text = "".join(c for c in str(value) if c.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def summarise_body(text: str, limit: int = 200) -> str:
    """An error answer's body as one short line: an HTML page (a gateway's, a login page) by
    its title and size, anything else by its first ``limit`` printable characters."""
    body = text.strip()
    if body[:100].lstrip().lower().startswith(("<!doctype html", "<html", "<head", "<body")):
        found = _TITLE.search(body)
        title = " ".join(found.group(1).split()) if found else ""
        named = f" titled {printable(title, 80)!r}" if title else ""
        return f"an HTML page{named} ({len(body)} characters)"
    return printable(" ".join(body.split()), limit)
