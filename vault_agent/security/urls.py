"""URL rules and the pinned HTTP client: which hosts web_fetch may reach, checked where it actually connects.

A URL passes when its scheme is http(s), its host is not a local or metadata
name, it is on the allowlist (when tools.md has one) and every address its
name resolves to is public. The check happens inside the connection: the
name is resolved once, the addresses are checked, and the socket connects to
a checked address, so a DNS answer that changes between check and connect
(rebinding) cannot reach a private address. Every redirect is a new URL and
passes the same rules; the caller's headers are dropped when a redirect
changes scheme, host or port, so a secret sent to one host is never sent on.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

from .decision import Refused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.com", "metadata.tencentyun.com"})
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


def address_problem(ip: IPAddress) -> str | None:
    """Why a tool must not connect to this address, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"{ip} is an IPv4-mapped IPv6 address"
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:  # 6to4, Teredo and NAT64 reach the IPv4 address inside
            inner = address_problem(embedded)
            return f"{ip} embeds {inner}" if inner else None
    checks = (("loopback", ip.is_loopback), ("link-local", ip.is_link_local), ("unspecified", ip.is_unspecified),
              ("multicast", ip.is_multicast), ("reserved", ip.is_reserved),
              ("carrier-grade NAT", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
              ("private", ip.is_private), ("not public", not ip.is_global))
    for label, hit in checks:
        if hit:
            return f"{ip} is a {label} address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_allowed(host: str, allow: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allow)


@dataclass(frozen=True)
class UrlRules:
    """`allow_domains`: hosts (and their subdomains) web_fetch may reach; None: any public host.

    `resolver` and `address_check` are the system's DNS and `address_problem`;
    tests substitute them where no real DNS can answer.
    """

    allow_domains: tuple[str, ...] | None
    resolver: Resolver = system_resolver
    address_check: Callable[[IPAddress], str | None] = address_problem

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of an acceptable URL; raises Refused. The addresses are checked at connect."""
        if "\x00" in url or any(c in url for c in "\r\n"):
            raise Refused("the URL contains control characters")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise Refused(f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise Refused(f"only http and https URLs may be fetched, not {scheme or 'a relative URL'!r}")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise Refused("the URL has no host")
        if parts.username or parts.password:
            raise Refused("credentials in a URL are refused; pass a secret in a header instead")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            problem = self.address_check(literal)
            if problem:
                raise Refused(f"{host} refused: {problem}")
        elif host == "localhost" or host.endswith(LOCAL_SUFFIXES) or host in METADATA_HOSTS:
            raise Refused(f"{host} is a local or cloud-metadata host name")
        if self.allow_domains is not None and not _host_allowed(host, self.allow_domains):
            allowed = ", ".join(self.allow_domains) or "none"
            raise Refused(f"{host} is not in network.allow_domains in tools.md (allowed: {allowed})")
        return scheme, host, port or (443 if scheme == "https" else 80)

    def addresses(self, host: str, port: int) -> list[str]:
        """Resolve once; every address must be public (one private answer refuses the host)."""
        try:
            found = self.resolver(host, port)
        except OSError as exc:
            raise Refused(f"cannot resolve {host} ({exc})") from None
        if not found:
            raise Refused(f"{host} resolves to no address")
        for raw in found:
            problem = self.address_check(ipaddress.ip_address(raw.split("%")[0]))
            if problem:
                raise Refused(f"{host} resolves to a refused address: {problem}")
        return found


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Resolves and checks the host itself, then connects to a checked address (no second DNS lookup)."""

    def __init__(self, host: str, port: int, rules: UrlRules, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.rules = rules
        self.peer: str | None = None

    def connect(self) -> None:
        last: OSError | None = None
        for address in self.rules.addresses(self.host, self.port):
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                last = exc
                continue
            self.peer = address
            return
        raise last or OSError(f"cannot connect to {self.host}")


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def __init__(self, host: str, port: int, rules: UrlRules, timeout: float,
                 context: ssl.SSLContext | None) -> None:
        super().__init__(host, port, rules, timeout)
        self.ssl_context = context or ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        # The certificate is checked against the host name, not the pinned address.
        self.sock = self.ssl_context.wrap_socket(self.sock, server_hostname=self.host)


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool
    redirects: list[str] = field(default_factory=list)
    peer: str | None = None


def fetch(url: str, rules: UrlRules, *, headers: dict[str, str] | None = None, max_bytes: int = 2_000_000,
          timeout_s: float = 20.0, ssl_context: ssl.SSLContext | None = None) -> Fetched:
    """GET `url` under `rules`, following up to five redirects, each checked like the first URL."""
    deadline = time.monotonic() + timeout_s
    sent = dict(headers or {})
    redirects: list[str] = []
    origin: tuple[str, str, int] | None = None
    while True:
        scheme, host, port = rules.check_url(url)
        if origin is not None and (scheme, host, port) != origin:
            sent = {}
        origin = origin or (scheme, host, port)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"fetching {url} took longer than {timeout_s:g} s")
        conn: _PinnedHTTPConnection = (_PinnedHTTPSConnection(host, port, rules, left, ssl_context)
                                       if scheme == "https" else _PinnedHTTPConnection(host, port, rules, left))
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"User-Agent": "vault-agent web_fetch", "Accept-Encoding": "identity",
                                                 "Accept": "text/html, text/*, application/json;q=0.9, */*;q=0.1",
                                                 **sent})
            response = conn.getresponse()
            if response.status in REDIRECTS and response.getheader("Location"):
                if len(redirects) >= MAX_REDIRECTS:
                    raise Refused(f"more than {MAX_REDIRECTS} redirects")
                url = urljoin(url, response.getheader("Location", ""))
                redirects.append(url)
                continue
            body = response.read(max_bytes + 1)
            content_type = response.headers.get_content_type()
            charset = response.headers.get_content_charset()
            return Fetched(url, response.status, content_type, charset, body[:max_bytes], len(body) > max_bytes,
                           redirects, conn.peer)
        finally:
            conn.close()
