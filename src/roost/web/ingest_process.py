"""Ingest processes: `ingest_processes - 1` more processes accepting on the server's port.

One process reads requests on one core; HTTP and the dialects' parsing are most of an ingest
request's Python (bench/RESULTS.md). With more processes the kernel hands each new connection
to whichever process is waiting in `accept` on the shared socket; an ingest process reads its
ingest requests (web/intake.py), hands their events to the server over the link
(web/ingest_link.py) and answers what the server says; every other route goes to the server
as it came (web/proxy.py). The server keeps all the state, so the processes are
interchangeable: one that dies is started again after a second, its requests in flight
unanswered (their clients send them again; dedup knows what was stored).

The server's side (`IngestProcesses`) owns a private directory for the two Unix sockets and
the children; `stop_taking()` tells them to stop as soon as the server is told to, and the
server's shutdown waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from roost.config import Settings
from roost.dialects.base import Dialect, Reply
from roost.web.body import Receive
from roost.web.ingest_link import Asked, LinkClient, LinkDown, LinkServer, Problem
from roost.web.intake import PATHS, Send, read, serve
from roost.web.proxy import Proxy

log = logging.getLogger("roost.ingest")
RESTART_AFTER = 1.0
STOP_SECONDS = 15.0  # a child's graceful stop (uvicorn's is 10 s) before it is killed
CONNECT_SECONDS = 10.0


class IngestApp:
    """An ingest process's ASGI app."""

    def __init__(self, settings: Settings, link_path: str, http_path: str) -> None:
        self.settings = settings
        self.link_path = link_path
        self.link = LinkClient(on_lost=self._lost)
        self.proxy = Proxy(http_path)
        self.server: Any = None  # the uvicorn.Server, told to exit when the link goes

    def _lost(self) -> None:
        """The server is gone: stop, and let go of the port at once (a server started again
        on it binds it)."""
        if self.server is not None:
            self.server.should_exit = True
            for listener in getattr(self.server, "servers", ()):
                listener.close()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path in PATHS:
                dialect = PATHS[path]

                async def take(headers: dict[str, str]) -> Reply:
                    return await self._take(dialect, scope, headers, receive)

                await serve(take, scope, send)
            else:
                await self.proxy(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _take(
        self, dialect: Dialect | None, scope: dict[str, Any], headers: dict[str, str],
        receive: Receive,
    ) -> Reply:  # fmt: skip
        started = time.perf_counter()
        got = await read(self.settings, dialect, scope, headers, receive)
        asked = Asked(0, got.chosen.name, 0.0, headers.get("origin"))
        if got.error is not None:
            asked.problem = Problem.of(got.error)
        elif got.request is not None:  # always, with no error
            asked.client_ip, asked.received_at = got.request.client_ip, got.request.received_at
            asked.parsed = got.parsed
        asked.spent = time.perf_counter() - started
        try:
            answered = await self.link.ask(asked)
        except LinkDown as error:
            total = got.parsed.total if got.parsed is not None else 1
            refused = got.chosen.refuse(error, total)
            return Reply(refused.status, refused.body, {"Retry-After": "1", **refused.headers})
        return Reply(answered.status, answered.body, dict(answered.headers))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.link.connect(self.link_path, CONNECT_SECONDS)
                except OSError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.link.close()
                await self.proxy.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def child(settings: Settings, listening: socket.socket, link_path: str, http_path: str) -> None:
    """An ingest process's main: serve on the shared socket until told to stop."""
    from roost import logs
    from roost.web import serving

    logs.configure(settings.log_level, settings.log_format)
    gc.set_threshold(50_000, 20, 100)  # as the server: many short-lived objects a request
    app = IngestApp(settings, link_path, http_path)
    config = serving.config(app, settings)
    app.server = uvicorn.Server(config)
    app.server.run(sockets=[listening])


class IngestProcesses:
    """The server's side: the sockets, the children, and their stop."""

    def __init__(self, settings: Settings, listening: socket.socket) -> None:
        self.settings = settings
        self.listening = listening
        self.count = settings.ingest_processes - 1
        # a directory of its own, private (only this user may speak to the server's trusting
        # side), in the data dir — whose lock the server holds: what a killed one left is
        # its own to remove — unless its path is too long for a Unix socket's (107 bytes)
        self.directory = settings.data_dir / "sockets"
        if len(str(self.directory.resolve())) > 90:
            self.directory = Path(tempfile.mkdtemp(prefix="roost-"))
        else:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(mode=0o700)
        self.link_path = str(self.directory / "link.sock")
        self.http_path = str(self.directory / "http.sock")
        self.http_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.http_socket.bind(self.http_path)
        self.http_socket.listen(2048)
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self.children: list[multiprocessing.process.BaseProcess | None] = [None] * self.count
        self.stopping = False

    def stop_taking(self) -> None:
        """Tell the children to stop (the server was told to): they take no new connection
        and finish what they have."""
        self.stopping = True
        for process in self.children:
            if process is not None and process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    @contextlib.asynccontextmanager
    async def attached(self, runtime: Any) -> AsyncIterator[None]:
        """The link served and the children running, for as long as the server runs."""
        from roost.web import ingest

        async def answer(request: Any, started: float) -> Reply:
            runtime.inflight.enter()
            try:
                await runtime.backlog.admit()  # in one wait with the server's own requests
                return await ingest.answer(runtime, request, started)
            finally:
                runtime.inflight.leave()

        link = LinkServer(answer)
        await link.start(self.link_path)
        for slot in range(self.count):
            self._start(slot)
        watching = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            self.stop_taking()
            await asyncio.to_thread(self._join)
            await link.close()
            self.close()

    def close(self) -> None:
        """The sockets and their directory gone (again is harmless)."""
        self.http_socket.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _start(self, slot: int) -> None:
        process = self._context.Process(
            target=child,
            args=(self.settings, self.listening, self.link_path, self.http_path),
            name=f"roost-ingest-{slot + 1}",
            daemon=True,
        )
        process.start()
        self.children[slot] = process

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RESTART_AFTER)
            for slot, process in enumerate(self.children):
                if self.stopping:
                    return
                if process is not None and not process.is_alive():
                    log.warning("ingest process %s ended (exit code %s); starting it again",
                                process.name, process.exitcode)  # fmt: skip
                    process.close()
                    self._start(slot)

    def _join(self) -> None:
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.children:
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("ingest process %s did not stop; killing it", process.name)
                process.kill()
                process.join()


class Server(uvicorn.Server):
    """uvicorn's server, which tells the ingest processes to stop as soon as it is told to."""

    def __init__(self, config: uvicorn.Config, processes: IngestProcesses | None) -> None:
        super().__init__(config)
        self.processes = processes

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.processes is not None:
            self.processes.stop_taking()
        super().handle_exit(sig, frame)
