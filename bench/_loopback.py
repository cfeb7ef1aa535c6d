"""A minimal keep-alive HTTP/1.1 server on loopback answering ``200`` with a fixed JSON body
(``{"ok": true, ...}`` unless told otherwise), run in a separate process so it does not share the
benchmarked interpreter's GIL."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

BODY = b'{"ok":true,"id":"ch_1"}'


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


RESPONSE = _response(BODY)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(sock: socket.socket, body: bytes) -> None:
    global RESPONSE
    RESPONSE = _response(body)

    async def main() -> None:
        server = await asyncio.start_server(_handle, sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def loopback_server(body: bytes = BODY) -> Iterator[str]:
    """Start the server (answering every request with ``body``) in a child process; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(sock, body), daemon=True)
    process.start()
    sock.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.join(5)
