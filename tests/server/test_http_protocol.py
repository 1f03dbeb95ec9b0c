"""The served HTTP protocol: what a response writes in one turn of the event loop goes out in one
write (a head with its body, a stream's events that come together)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_runtime.server.http import _OneWritePerTurn, http_protocol

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        self.writes.extend(lines)

    def write_eof(self) -> None:
        self.writes.append(b"<eof>")

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def held(recorder: Recorder) -> Any:
    return _OneWritePerTurn(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_head_and_its_body_are_one_write() -> None:
    recorder = Recorder()
    transport = held(recorder)
    transport.write(HEAD)
    transport.write(b"{}")
    assert recorder.writes == []
    await asyncio.sleep(0)
    assert recorder.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # nothing more is sent
    assert recorder.writes == [HEAD + b"{}"]


async def test_the_writes_of_each_turn_of_the_loop_go_out_together() -> None:
    recorder = Recorder()
    transport = held(recorder)
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert recorder.writes == [HEAD]  # a head alone is not kept waiting for its body
    transport.write(b"data: 1\n\n")
    transport.write(memoryview(b"data: 2\n\n"))
    transport.write(b"")  # nothing to send: no write of its own
    await asyncio.sleep(0)
    transport.write(bytearray(b"data: 3\n\n"))
    await asyncio.sleep(0)
    assert recorder.writes == [HEAD, b"data: 1\n\ndata: 2\n\n", b"data: 3\n\n"]


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (lambda t: t.close(), [HEAD + b"{}"]),
        (lambda t: t.write_eof(), [HEAD + b"{}", b"<eof>"]),
        (lambda t: t.writelines([b"a", b"b"]), [HEAD + b"{}", b"a", b"b"]),
    ],
)
async def test_held_writes_are_sent_before_the_transport_ends(
    end: Any, expected: list[bytes]
) -> None:
    recorder = Recorder()
    transport = held(recorder)
    transport.write(HEAD)
    transport.write(b"{}")
    end(transport)
    assert recorder.writes == expected
    await asyncio.sleep(0)
    assert recorder.writes == expected


async def test_abort_drops_held_writes_and_other_calls_pass_through() -> None:
    recorder = Recorder()
    transport = held(recorder)
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert recorder.writes == []
    assert recorder.aborted
    assert transport.get_extra_info("peername") == "info:peername"


async def test_writes_held_when_the_client_is_gone_are_dropped() -> None:
    recorder = Recorder()
    transport = held(recorder)
    transport.write(b"data: 1\n\n")
    recorder.closed = True  # closed under it (the connection lost)
    await asyncio.sleep(0)
    assert recorder.writes == []


class Wire:
    """In front of a real transport: what reaches the socket, write by write."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _served(
    app: Starlette, writes: list[bytes]
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    class Recorded(http_protocol()):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(Wire(transport, writes))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=Recorded, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    return server, task, sock.getsockname()[1]


async def _exchange(port: int, request: bytes, until: bytes) -> list[bytes]:
    """Send `request`, then read until `until` has arrived; each read's bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        reads: list[bytes] = []
        async with asyncio.timeout(10):
            while until not in b"".join(reads):
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                reads.append(data)
        return reads
    finally:
        writer.close()


async def test_through_uvicorn_a_plain_answer_comes_whole_and_a_stream_keeps_coming() -> None:
    release = asyncio.Event()

    async def plain(_: Request) -> Response:
        return JSONResponse({"answer": 42})

    async def events() -> Any:
        yield b"data: first\n\n"
        yield b"data: also\n\n"  # ready at once: the same write
        await release.wait()
        yield b"data: second\n\n"

    async def stream(_: Request) -> Response:
        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/plain", plain), Route("/stream", stream)])
    writes: list[bytes] = []
    server, task, port = await _served(app, writes)
    try:
        reads = await _exchange(
            port, b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n", until=b'{"answer":42}'
        )
        assert b"".join(reads).startswith(b"HTTP/1.1 200 OK\r\n")
        assert len(writes) == 1  # head and body in one write
        assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert writes[0].endswith(b'{"answer":42}')
        reads = await _exchange(
            port, b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n", until=b"data: first"
        )
        assert b"text/event-stream" in reads[0]  # the head came while the stream waits
        # The head and the two events ready with it went out in one write.
        assert len(writes) == 2
        assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"data: first" in writes[1] and b"data: also" in writes[1]
        release.set()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
