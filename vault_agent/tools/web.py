"""The web_fetch tool: GET one URL under the URL rules and return it as readable Markdown."""

from __future__ import annotations

import http.client
import re
from typing import Any, Mapping

from ..security.decision import ALLOWED, Decision, Refused, refuse
from ..security.policy import substitute
from ..security.urls import fetch
from .base import BaseTool, ToolContext, ToolError, schema

MAX_DOWNLOAD = 2_000_000
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-yaml",
               "application/yaml", "application/ld+json")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "nav", "footer")


def html_to_markdown(html: str) -> tuple[str, str]:
    """(title, Markdown body) of an HTML page, scripts, styles and navigation left out."""
    from bs4 import BeautifulSoup  # lazy: only runs that fetch pages pay for the parser
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(list(_DROP_TAGS)):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    text = MarkdownConverter(heading_style="ATX", bullets="-").convert_soup(root)
    return title, re.sub(r"\n{3,}", "\n\n", text).strip()


class WebFetch(BaseTool):
    name = "web_fetch"
    description = ("Fetch a web page (http or https, hosts granted in tools.md) and read it as Markdown. A granted "
                   "secret may go in a header as {{secret:NAME}}.")
    input_schema = schema({"url": {"type": "string", "minLength": 1},
                           "headers": {"type": "object", "additionalProperties": {"type": "string"}}}, ["url"])
    capability = "network"
    takes_secrets = True

    def check(self, args: dict[str, Any], ctx: ToolContext) -> Decision:
        try:
            ctx.policy.urls.check_url(args["url"])
        except Refused as exc:
            return refuse(exc.reason)
        bad = [h for h in args.get("headers", {}) if h.lower() in ("host", "content-length", "transfer-encoding")]
        if bad:
            return refuse(f"header {bad[0]} cannot be set")
        return ALLOWED

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        url = substitute(args["url"], dict(secrets))
        try:
            page = fetch(url, ctx.policy.urls, headers=substitute(args.get("headers", {}), dict(secrets)),
                         max_bytes=MAX_DOWNLOAD, timeout_s=ctx.policy.grants.limits.timeout_s)
        except (OSError, TimeoutError, http.client.HTTPException) as exc:
            raise ToolError(f"could not fetch {args['url']}: {exc}") from None
        try:
            text = page.body.decode(page.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = page.body.decode("utf-8", errors="replace")
        shown = args["url"] if not page.redirects else f"{args['url']} (redirected to {page.url})"
        if page.status >= 400:
            raise ToolError(f"HTTP {page.status} from {shown}: {text[:500]}")
        if page.content_type in _HTML_TYPES:
            title, text = html_to_markdown(text)
            head = f"# {title}\n" if title else ""
        elif page.content_type.startswith("text/") or page.content_type in _TEXT_TYPES \
                or page.content_type.endswith(("+json", "+xml")):
            head = ""
        else:
            raise ToolError(f"{shown} is {page.content_type}, not text; web_fetch reads pages, not files")
        cut = f"\n[download stopped at {MAX_DOWNLOAD // 1_000_000} MB]" if page.truncated else ""
        return f"{head}Source: {shown}\n\n{text}{cut}"
