"""web_fetch against real HTTP servers on loopback addresses: refusals, redirects, DNS rebinding, conversion.

No real DNS can answer here, so where a test needs a public host it swaps in
two things, and only those: a resolver (a dict standing in for DNS) and an
address rule under which 127.0.0.1 plays a public internet host while every
other address (127.0.0.2 stands for the private network) follows the real
rules. The HTTP servers, sockets and the client are real.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from vault_agent.security.decision import Refused
from vault_agent.security.policy import Policy
from vault_agent.security.urls import UrlRules, address_problem, fetch

from security_kit import LocalServer, call, html, make_agent, redirect, runtime

PUBLIC_IN_TEST = "127.0.0.1"


def world(names: dict[str, list[list[str]]] | None = None) -> tuple[UrlRules, list[str]]:
    """Rules where 127.0.0.1 is public; `names` maps a host to successive DNS answers (the last one repeats)."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in (names or {}):
            ipaddress.ip_address(host)  # only literal addresses need no DNS answer
            return [host]
        answers = (names or {})[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def check(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(ip) == PUBLIC_IN_TEST else address_problem(ip)

    return UrlRules(None, resolver=resolve, address_check=check), asked


def test_loopback_and_local_names_are_refused_before_any_request(servers: list[LocalServer]) -> None:
    server = LocalServer(html("<p>internal</p>"))
    servers.append(server)
    real = UrlRules(None)  # the real resolver and the real address rules
    for url in (server.url, f"http://localhost:{server.port}/", f"http://[::ffff:127.0.0.1]:{server.port}/",
                f"http://2130706433:{server.port}/", f"http://127.1:{server.port}/"):
        with pytest.raises(Refused):
            fetch(url, real)
    assert server.hits == []


def test_a_public_page_is_fetched(servers: list[LocalServer]) -> None:
    server = LocalServer(html("<p>hello</p>"))
    servers.append(server)
    rules, _ = world()
    page = fetch(server.url + "/a?b=1", rules)
    assert (page.status, page.body, page.peer) == (200, b"<p>hello</p>", "127.0.0.1")
    assert server.hits[0][0] == "/a?b=1"


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/admin", "http://localhost:{port}/",
                                    "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
                                    "http://[::1]:{port}/"])
def test_a_redirect_to_a_private_address_is_refused_on_that_hop(servers: list[LocalServer], target: str) -> None:
    private = LocalServer(html("<p>admin panel</p>"), host="127.0.0.2")
    public = LocalServer(redirect(target.format(port=private.port)))
    servers.extend([private, public])
    rules, _ = world()
    with pytest.raises(Refused):
        fetch(public.url + "/start", rules)
    assert len(public.hits) == 1 and private.hits == []


def test_dns_rebinding_cannot_reach_a_private_address(servers: list[LocalServer]) -> None:
    public = LocalServer(html("<p>public</p>"))
    private = LocalServer(html("<p>internal</p>"), host="127.0.0.2", port=public.port)  # same port, other host
    servers.extend([public, private])
    # The attacker's DNS answers a public address first, then a private one.
    rules, asked = world({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    page = fetch(f"http://rebind.test:{public.port}/", rules)
    assert page.body == b"<p>public</p>" and page.peer == "127.0.0.1"
    assert asked == ["rebind.test"]  # resolved once: the socket went to the address that was checked
    with pytest.raises(Refused, match="127.0.0.2 is a loopback"):
        fetch(f"http://rebind.test:{public.port}/", rules)
    assert private.hits == [] and len(public.hits) == 1


def test_a_secret_header_is_not_sent_on_to_another_host(servers: list[LocalServer]) -> None:
    other = LocalServer(html("<p>other</p>"))
    same = LocalServer(html("<p>same</p>"))
    first = LocalServer(lambda h: (302, {"Location": f"http://other.test:{other.port}/"}, b"") if h.path == "/away"
                        else (302, {"Location": "/here"}, b"") if h.path == "/stay"
                        else (200, {"Content-Type": "text/plain"}, b"ok"))
    servers.extend([other, same, first])
    rules, _ = world({"other.test": [["127.0.0.1"]], "first.test": [["127.0.0.1"]]})
    fetch(f"http://first.test:{first.port}/stay", rules, headers={"Authorization": "Bearer abc"})
    assert [h.get("Authorization") for _, h in first.hits] == ["Bearer abc", "Bearer abc"]
    page = fetch(f"http://first.test:{first.port}/away", rules, headers={"Authorization": "Bearer abc"})
    assert page.redirects == [f"http://other.test:{other.port}/"]
    assert "Authorization" not in other.hits[0][1]


def test_redirect_loops_stop(servers: list[LocalServer]) -> None:
    loop = LocalServer(redirect("/again"))
    servers.append(loop)
    with pytest.raises(Refused, match="more than 5 redirects"):
        fetch(loop.url + "/", world()[0])
    assert len(loop.hits) == 6


def _web_runtime(tmp_path: Path, rules: UrlRules) -> Any:
    root = make_agent(tmp_path, "tools: [web_fetch]\ncapabilities:\n  network: true")
    rt = runtime(root)
    rt.ctx.policy = Policy(root, rt.policy.grants, urls=rules)  # the test world's DNS and address rule
    return rt


def test_web_fetch_returns_readable_markdown_without_scripts(tmp_path: Path, servers: list[LocalServer]) -> None:
    page = ("<html><head><title>Rates 2027</title><style>p{color:red}</style></head><body><nav>menu</nav>"
            "<main><h1>Day rate</h1><p>It is <b>€780</b>, see <a href='/x'>terms</a>.</p>"
            "<script>steal()</script><ul><li>one</li><li>two</li></ul></main></body></html>")
    server = LocalServer(html(page))
    servers.append(server)
    out = call(_web_runtime(tmp_path, world()[0]), "web_fetch", url=server.url + "/rates")
    assert out.status == "ok", out.result.content
    text = out.result.content
    assert text.startswith("# Rates 2027\nSource: ") and "# Day rate" in text and "**€780**" in text
    assert "[terms](/x)" in text and "- one" in text
    assert "steal" not in text and "color:red" not in text and "menu" not in text


def test_web_fetch_reports_http_errors_and_binary_content(tmp_path: Path, servers: list[LocalServer]) -> None:
    server = LocalServer(lambda h: (404, {"Content-Type": "text/plain"}, b"gone") if h.path == "/gone"
                         else (200, {"Content-Type": "application/pdf"}, b"%PDF-1.7"))
    servers.append(server)
    rt = _web_runtime(tmp_path, world()[0])
    gone = call(rt, "web_fetch", url=server.url + "/gone")
    assert gone.status == "error" and "HTTP 404" in gone.result.content
    pdf = call(rt, "web_fetch", url=server.url + "/doc.pdf")
    assert pdf.status == "error" and "application/pdf, not text" in pdf.result.content


def test_web_fetch_through_the_runtime_refuses_private_hosts_and_off_list_domains(tmp_path: Path,
                                                                                servers: list[LocalServer]) -> None:
    server = LocalServer(html("<p>x</p>"))
    servers.append(server)
    root = make_agent(tmp_path, "tools: [web_fetch]\ncapabilities:\n  network: {allow_domains: [arxiv.org]}")
    rt = runtime(root)
    for url in (server.url, "https://evil.example/"):
        out = call(rt, "web_fetch", url=url)
        assert (out.status, out.decision) == ("refused", "refused")
    assert server.hits == []


def _tls_server(tmp_path: Path, name: str, servers: list[LocalServer]) -> tuple[LocalServer, Path]:
    """An HTTPS server on 127.0.0.1 with a fresh self-signed certificate for `name`."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = LocalServer(html("<p>over tls</p>"), tls=context)
    servers.append(server)
    return server, cert_file


def test_https_checks_the_certificate_against_the_host_name_not_the_pinned_address(
        tmp_path: Path, servers: list[LocalServer]) -> None:
    import ssl

    server, cert = _tls_server(tmp_path, "secure.test", servers)
    rules, _ = world({"secure.test": [["127.0.0.1"]], "imposter.test": [["127.0.0.1"]]})
    trust = ssl.create_default_context(cafile=str(cert))
    page = fetch(f"https://secure.test:{server.port}/", rules, ssl_context=trust)
    assert page.body == b"<p>over tls</p>" and page.peer == "127.0.0.1"
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        fetch(f"https://imposter.test:{server.port}/", rules, ssl_context=trust)
