"""A Chat Completions server on 127.0.0.1 for tests and benchmarks: real HTTP (Starlette under uvicorn, both
shipped with gradio), scriptable per test.

By default it answers every request with a caption derived from the request's content: for an image, the
SHA-256 of the image bytes in its data URL (`caption_for(bytes)`), for text, of the last user message
(`answer_for(text)`), with a `usage` block. `script` (a list, consumed first) or `handler` (a function of
the request number and body) choose other answers: `Answer(status=429, headers={"retry-after": "1"})`,
`Answer(delay=5)`, `Answer(raw="not json")`, `Answer(text="I'm sorry, I can't help with that.")`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def caption_for(image: bytes) -> str:
    return f"a picture {hashlib.sha256(image).hexdigest()[:12]}"


def answer_for(text: str) -> str:
    return f"rewritten {hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class Answer:
    """One scripted answer: a status, a caption `text` (default: derived from the request), a raw body
    instead of JSON, extra headers, a delay before answering, and a finish reason."""

    status: int = 200
    text: str | None = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, int] | None = field(default_factory=lambda: dict(USAGE))


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float

    @property
    def image_url(self) -> str | None:
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") == "image_url":
                        return part["image_url"]["url"]
        return None

    @property
    def image_bytes(self) -> bytes | None:
        url = self.image_url
        return base64.b64decode(url.split(",", 1)[1]) if url else None

    @property
    def prompt(self) -> str:
        message = self.body["messages"][-1]
        content = message["content"]
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")


class FakeServer:
    """Start with `start()`, point a client at `url`; `reset()` between tests."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self.handler: Callable[[int, dict[str, Any]], Answer | None] | None = None
        self.delay = 0.0  # added to every default answer (the benchmark's fixed latency)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Forget requests and scripts; waits (a few seconds at most) for answers still being delayed."""
        deadline = time.monotonic() + 5
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            self.received, self.script, self.handler, self.delay = [], [], None, 0.0
            self.max_in_flight = 0

    def start(self) -> FakeServer:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)

    async def _chat(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, Response

        body = await request.json()
        with self._lock:
            self.received.append(Received(body, dict(request.headers), time.monotonic()))
            n = len(self.received)
            answer = self.script.pop(0) if self.script else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if answer is None and self.handler is not None:
                answer = self.handler(n, body)
            answer = answer or Answer(delay=self.delay)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.raw is not None:
                return Response(answer.raw, answer.status, answer.headers, media_type="application/json")
            if answer.status != 200:
                error = {"error": {"message": answer.text or f"error {answer.status}", "type": "test"}}
                return JSONResponse(error, answer.status, answer.headers)
            return JSONResponse(self._completion(body, answer), 200, answer.headers)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _completion(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        received = Received(body, {}, 0.0)
        if answer.text is not None:
            text = answer.text
        elif received.image_bytes is not None:
            text = caption_for(received.image_bytes)
        else:
            text = answer_for(received.prompt)
        out: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": answer.finish_reason,
                }
            ],
        }
        if answer.usage is not None:
            out["usage"] = answer.usage
        return out


def main() -> None:
    """`python -m beprepared_dagster_tests.remote.fake_server --delay 0.05`: serve until killed (benchmarks
    run it in its own process, so its CPU time is not counted as the client's)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args()
    server = FakeServer().start()
    server.delay = args.delay
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
