"""Owns FakeLLMServer: a scripted local server speaking the Anthropic and OpenAI chat wire formats.

Tests and benchmarks point the real ``anthropic`` / ``openai`` SDK clients at it::

    with FakeLLMServer() as server:
        server.script(Reply(text="hi"), Fail(429, headers={"Retry-After": "1"}))
        client = anthropic.Anthropic(api_key="test", base_url=server.anthropic_base_url)

Each request to ``POST /v1/messages`` or ``POST /v1/chat/completions`` consumes the next
scripted step (shared across both endpoints) and renders it in that endpoint's format.

Token accounting: ``Reply`` counts are Anthropic-style disjoint buckets (``input_tokens`` is the
uncached part). On the OpenAI endpoint ``prompt_tokens`` is therefore
``input_tokens + cache_read_tokens + cache_write_tokens`` and ``cached_tokens`` is ``cache_read_tokens``,
so a usage normaliser sees the same totals from either provider.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

__all__ = ["FakeLLMServer", "Fail", "Hang", "Malformed", "RecordedRequest", "Reply", "Step", "ToolUse",
           "TruncatedStream"]

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ToolUse:
    """One tool call; id=None gets a generated toolu_/call_ id."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful answer: Anthropic text + tool_use blocks, or OpenAI content + tool_calls; streamed if asked."""

    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model: str | None = None
    delay_s: float = 0


@dataclass(frozen=True)
class Fail:
    """An error status plus extra headers; body=None gives the endpoint's own error shape for the status."""

    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0


@dataclass(frozen=True)
class Hang:
    """Sleep, then answer 504, so a client with a shorter timeout gives up first; close() cuts it short."""

    seconds: float


@dataclass(frozen=True)
class Malformed:
    """A 200 claiming application/json whose body does not parse."""


@dataclass(frozen=True)
class TruncatedStream:
    """Valid start of a response, then the connection closes before the terminating events."""

    text: str = "partial"


Step = Reply | Fail | Hang | Malformed | TruncatedStream


class RecordedRequest(NamedTuple):
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: Any  # parsed JSON; raw text if it did not parse; None if empty


# error.type per status, as each provider documents it
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"), 429: ("requests", "rate_limit_exceeded"),
}


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    if path == ANTHROPIC_PATH:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _pieces(text: str, size: int = 12) -> list[str]:
    # Several deltas per block, so clients' accumulation logic is actually exercised.
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _tool_id(call: ToolUse, prefix: str, n: int, i: int) -> str:
    return call.id or f"{prefix}{n:06d}_{i}"


def _anthropic_usage(r: Reply) -> dict[str, int]:
    return {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
            "cache_creation_input_tokens": r.cache_write_tokens, "cache_read_input_tokens": r.cache_read_tokens}


def _anthropic_blocks(r: Reply, n: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if r.text or not r.tool_calls:
        blocks.append({"type": "text", "text": r.text})
    for i, call in enumerate(r.tool_calls):
        blocks.append({"type": "tool_use", "id": _tool_id(call, "toolu_fake", n, i), "name": call.name,
                       "input": call.arguments})
    return blocks


def _anthropic_message(r: Reply, model: str, n: int) -> dict[str, Any]:
    return {
        "id": f"msg_fake{n:06d}", "type": "message", "role": "assistant", "model": model,
        "content": _anthropic_blocks(r, n),
        "stop_reason": "tool_use" if r.tool_calls else "end_turn", "stop_sequence": None,
        "usage": _anthropic_usage(r),
    }


def _anthropic_events(r: Reply, model: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    start = _anthropic_message(r, model, n)
    # message_start carries a placeholder output count, as the live API does; message_delta has the real one.
    start.update(content=[], stop_reason=None, usage={**_anthropic_usage(r), "output_tokens": 1})
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(_anthropic_blocks(r, n)):
        if block["type"] == "text":
            opened, deltas = {"type": "text", "text": ""}, [
                {"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        else:
            opened = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p}
                      for p in _pieces(json.dumps(block["input"]))]
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": opened}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop_reason = "tool_use" if r.tool_calls else "end_turn"
    # Usage on message_delta is cumulative, as the live API sends it.
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": _anthropic_usage(r)}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _openai_usage(r: Reply) -> dict[str, Any]:
    prompt = r.input_tokens + r.cache_read_tokens + r.cache_write_tokens
    details: dict[str, int] = {"cached_tokens": r.cache_read_tokens, "audio_tokens": 0}
    if r.cache_write_tokens:
        details["cache_write_tokens"] = r.cache_write_tokens
    return {
        "prompt_tokens": prompt, "completion_tokens": r.output_tokens,
        "total_tokens": prompt + r.output_tokens, "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _openai_envelope(obj: str, model: str, n: int) -> dict[str, Any]:
    return {"id": f"chatcmpl-fake{n:06d}", "object": obj, "created": int(time.time()), "model": model,
            "service_tier": "default", "system_fingerprint": None}


def _openai_completion(r: Reply, model: str, n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": r.text or (None if r.tool_calls else ""),
                               "refusal": None, "annotations": []}
    if r.tool_calls:
        message["tool_calls"] = [
            {"id": _tool_id(c, "call_fake", n, i), "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for i, c in enumerate(r.tool_calls)]
    choice = {"index": 0, "message": message, "logprobs": None,
              "finish_reason": "tool_calls" if r.tool_calls else "stop"}
    return {**_openai_envelope("chat.completion", model, n), "choices": [choice], "usage": _openai_usage(r)}


def _openai_chunks(r: Reply, model: str, n: int, include_usage: bool) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**_openai_envelope("chat.completion.chunk", model, n),
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if r.text:
        chunks += [chunk({"content": p}) for p in _pieces(r.text)]
    for i, c in enumerate(r.tool_calls):
        head = {"index": i, "id": _tool_id(c, "call_fake", n, i), "type": "function",
                "function": {"name": c.name, "arguments": ""}}
        chunks.append(chunk({"tool_calls": [head]}))
        chunks += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                   for p in _pieces(json.dumps(c.arguments))]
    chunks.append(chunk({}, "tool_calls" if r.tool_calls else "stop"))
    if include_usage:
        chunks.append({**_openai_envelope("chat.completion.chunk", model, n), "choices": [],
                       "usage": _openai_usage(r)})
    return chunks


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so benchmarks measure requests rather than TCP setup
    disable_nagle_algorithm = True  # headers and body are separate writes; Nagle would add ~40 ms stalls
    server: _Server
    request_n = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_POST(self) -> None:
        fake = self.server.fake
        started = time.perf_counter()
        try:
            fake._dispatch(self)
        except (BrokenPipeError, ConnectionError, socket.timeout):
            self.close_connection = True  # the client gave up (e.g. its timeout fired first)
        finally:
            fake._add_time(time.perf_counter() - started)

    do_GET = do_POST

    def read_body(self) -> Any:
        if not (raw := self.rfile.read(int(self.headers.get("Content-Length") or 0))):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> None:
        extra = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        ctype = [v for k, v in (headers or {}).items() if k.lower() == "content-type"][-1:] or ["application/json"]
        self.send_response(status)
        self.send_header("Content-Type", ctype[0])
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_ids()
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(payload).encode(), headers=headers)

    def send_ids(self) -> None:
        rid = f"req_fake{self.request_n:06d}"
        self.send_header("request-id", rid)  # read by anthropic's APIStatusError.request_id
        self.send_header("x-request-id", rid)  # read by openai's APIStatusError.request_id

    def send_sse(self, frames: list[bytes]) -> None:
        # Body delimited by connection close: no Content-Length, no chunked encoding.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_ids()
        self.end_headers()
        self.close_connection = True
        # One write: with no pacing between events, per-event writes only add GIL ping-pong
        # with an in-process client; the client still parses the events incrementally.
        self.wfile.write(b"".join(frames))
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the stdlib's 5 resets connections when a benchmark opens many at once
    fake: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections are expected when scripting faults; anything else is a bug worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _anthropic_sse(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def _openai_sse(chunks: list[dict[str, Any]], done: bool = True) -> list[bytes]:
    frames = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return frames + [b"data: [DONE]\n\n"] if done else frames


class FakeLLMServer:
    """Scripted fake of both providers on 127.0.0.1; one scripted step per request, in order."""

    def __init__(self) -> None:
        self.default: Step | None = None  # served when the script is empty, e.g. for benchmarks
        self._steps: deque[Step] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._count = 0
        self._server_time = 0.0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # close() waits up to one poll interval; the stdlib default (0.5 s) would dominate short tests.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="FakeLLMServer", daemon=True)
        self._thread.start()

    @property
    def anthropic_base_url(self) -> str:
        return self.url  # the anthropic SDK appends /v1/messages itself

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"  # the openai SDK appends /chat/completions

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def server_time_s(self) -> float:
        """Seconds spent inside request handling, scripted delays included."""
        with self._lock:
            return self._server_time

    @property
    def pending(self) -> int:
        """Scripted steps not yet consumed."""
        with self._lock:
            return len(self._steps)

    def script(self, *steps: Step) -> None:
        for step in steps:
            if not isinstance(step, (Reply, Fail, Hang, Malformed, TruncatedStream)):
                raise TypeError(f"fake server: not a step: {step!r}")
        with self._lock:
            self._steps.extend(steps)

    def close(self) -> None:
        self._stopping.set()  # wakes any Hang early
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            live = list(self._connections)
        # Keep-alive handlers would otherwise keep serving pooled client connections after close.
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _add_time(self, seconds: float) -> None:
        with self._lock:
            self._server_time += seconds

    def _dispatch(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        body = h.read_body()
        routed = h.command == "POST" and path in (ANTHROPIC_PATH, OPENAI_PATH)
        with self._lock:
            self._requests.append(RecordedRequest(path, {k.lower(): v for k, v in h.headers.items()}, body))
            step: Step | None = None
            if routed:
                self._count += 1
                step = self._steps.popleft() if self._steps else self.default
            h.request_n = self._count
        if not routed:
            h.send_json(404, _error_body(path, 404, f"fake server: no route {h.command} {path}"))
        elif step is None:
            # x-should-retry: false, so the SDKs do not retry a test's scripting mistake.
            h.send_json(500, _error_body(path, 500, "fake server: script exhausted"), {"x-should-retry": "false"})
        else:
            self._respond(h, step, path, body if isinstance(body, dict) else {})

    def _respond(self, h: _Handler, step: Step, path: str, args: dict[str, Any]) -> None:
        n, anthropic, stream = h.request_n, path == ANTHROPIC_PATH, bool(args.get("stream"))
        model = str(args.get("model") or "fake-model")
        if isinstance(step, Reply):
            self._stopping.wait(step.delay_s)
            model = step.model or model
            if not stream:
                render = _anthropic_message if anthropic else _openai_completion
                h.send_json(200, render(step, model, n))
            elif anthropic:
                h.send_sse(_anthropic_sse(_anthropic_events(step, model, n)))
            else:
                usage = bool((args.get("stream_options") or {}).get("include_usage"))
                h.send_sse(_openai_sse(_openai_chunks(step, model, n, usage)))
        elif isinstance(step, Fail):
            self._stopping.wait(step.delay_s)
            if isinstance(step.body, str):
                h.send(step.status, step.body.encode(), {"Content-Type": "text/plain; charset=utf-8", **step.headers})
            else:
                payload = step.body if step.body is not None else _error_body(
                    path, step.status, f"fake server: scripted {step.status}")
                h.send_json(step.status, payload, step.headers)
        elif isinstance(step, Hang):
            if self._stopping.wait(step.seconds):
                h.close_connection = True  # closing down: just drop the connection
            else:
                h.send_json(504, _error_body(path, 504, "fake server: hung then gave up"))
        elif isinstance(step, Malformed):
            h.send(200, b'{"id": "malformed", "content": [{"type": "text", "text": "unterminated')
        else:
            partial = Reply(text=step.text)
            h.close_connection = True
            if not stream:
                full = json.dumps(_anthropic_message(partial, model, n) if anthropic
                                  else _openai_completion(partial, model, n)).encode()
                h.send(200, full[: len(full) // 2], length=len(full))
            elif anthropic:
                events = [e for e in _anthropic_events(partial, model, n)
                          if e[0] in ("message_start", "ping", "content_block_start", "content_block_delta")]
                h.send_sse(_anthropic_sse(events))
            else:
                chunks = _openai_chunks(partial, model, n, False)[:-1]  # drop the finish_reason chunk
                h.send_sse(_openai_sse(chunks, done=False))
