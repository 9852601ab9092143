"""``cmsynth reader-study serve``: the one address readers open, in front of one page process per reader.

The gateway (aiohttp) answers three kinds of address:

- ``/r/<reader token>/...``: that reader's page. The first request starts the reader's page
  process (:mod:`.reader_page`, a trame server on a free 127.0.0.1 port) and the gateway forwards
  the page, its assets and its websocket there. Each reader has a process, a scene and a session
  of their own, so two readers never share state.
- ``/c/<coordinator token>/``: the coordinator's page, each reader's answers done / total (read
  from the answer logs; never the truth) and ``.../progress.json``, the same as JSON.
- anything else, a wrong token included: the same 404 as a page that does not exist.

Requests other than GET, paths that climb (``..``), absolute or back-slashed paths, over-long
addresses and websocket messages over :data:`MAX_CLIENT_MESSAGE` bytes are refused. The client
never names a file: a page process knows one reader's trials and answers them by position. The
gateway never reads the answer key.

The page processes get a pipe as stdin and end when it closes, so they end with the gateway
however it ends (SIGKILL included); every answer is on disk before the page moves on, so a new
gateway resumes each reader at the first trial without an answer.

A page process listens on a private port of 127.0.0.1 and opens a websocket session only for a
client that says its secret (wslink's ``hello``): a random key the gateway writes for it into a
file only the coordinator's account can read (``--authKeyFile``) and puts into the browser's
``hello`` as it forwards it. The browser never sees the key, and another account on the machine
that connects to the private port directly gets no session.
"""

import asyncio
import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional

from ..errors import InputError
from ..reader_study.session import ReaderSession
from ..reader_study.study import Study
from .slicer_views import MISSING_WEB
from .tokens import COORDINATOR, Tokens, load_or_create_tokens

#: Longest request path accepted, in characters.
MAX_PATH = 512
#: Largest websocket message accepted from a browser, in bytes (the page sends small JSON messages:
#: clicks, keys, view size; images only travel to the browser).
MAX_CLIENT_MESSAGE = 256 * 1024
#: Seconds a page process may take to start listening.
START_TIMEOUT_S = 90.0
NOT_FOUND = "404: Not Found"
#: What a tail of a reader address may be: trame's page, assets and websocket, nothing that climbs.
_SAFE_TAIL = re.compile(r"^(?:[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*/)*(?:[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)?$")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def safe_tail(tail: str) -> bool:
    """True for a relative path of plain names (``assets/index-1.js``, ``ws``, ``""``)."""
    return len(tail) <= MAX_PATH and bool(_SAFE_TAIL.match(tail))


class PageProcess:
    """One reader's page process (started on demand, ended with the gateway)."""

    def __init__(self, study_dir: str, reader_id: str, log_dir: Optional[str] = None, key_dir: Optional[str] = None):
        self.study_dir = study_dir
        self.reader_id = reader_id
        self.port = free_port()
        self.log_dir = log_dir
        self.secret = secrets.token_urlsafe(32)
        self.key_dir = key_dir or tempfile.mkdtemp(prefix="cmsynth-keys-")  # mode 0700
        self.proc: Optional[subprocess.Popen] = None

    def _key_file(self) -> str:
        fd, path = tempfile.mkstemp(dir=self.key_dir, prefix="page-")  # mode 0600
        with os.fdopen(fd, "w") as f:
            f.write(self.secret)
        return path

    def start(self) -> None:
        cmd = [sys.executable, "-m", "CrossModalitySynthLib.web.reader_page", self.study_dir, self.reader_id,
               "--port", str(self.port), "--exit-with-stdin", "--authKeyFile", self._key_file()]
        out = subprocess.DEVNULL
        if self.log_dir:
            out = open(os.path.join(self.log_dir, f"page-{self.reader_id}.log"), "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                return False
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return True
            except OSError:
                await asyncio.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Gateway:
    """The aiohttp application of a served study."""

    def __init__(self, study: Study, tokens: Tokens, log_dir: Optional[str] = None):
        self.study = study
        self.tokens = tokens
        self.log_dir = log_dir
        self.pages: Dict[str, PageProcess] = {}
        self._locks: Dict[str, asyncio.Lock] = {}
        self._http = None
        self._key_dir = tempfile.mkdtemp(prefix="cmsynth-keys-")  # the page processes' keys, mode 0700

    # ------------------------------------------------------------------ the application

    def app(self):
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024)
        app.router.add_route("*", "/{path:.*}", self.handle)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app) -> None:
        if self._http is not None:
            await self._http.close()
        for page in self.pages.values():
            page.stop()
        shutil.rmtree(self._key_dir, ignore_errors=True)

    def _not_found(self):
        from aiohttp import web

        return web.Response(status=404, text=NOT_FOUND)

    async def handle(self, request):
        raw = request.raw_path.split("?", 1)[0]
        if request.method != "GET" or len(raw) > MAX_PATH:
            return self._not_found()
        parts = raw.split("/", 3)  # "", "r", token, tail
        if len(parts) < 3 or parts[1] not in ("r", "c") or not parts[2]:
            return self._not_found()
        owner = self.tokens.lookup(parts[2])
        tail = parts[3] if len(parts) > 3 else None
        if owner is None or tail is None or not safe_tail(tail):
            return self._not_found()  # also "/r/<token>" without the slash: the page loads its assets relatively
        if parts[1] == "c":
            return await self._coordinator(owner, tail)
        if owner == COORDINATOR:
            return self._not_found()
        return await self._forward(request, owner, tail)

    # ------------------------------------------------------------------ coordinator

    def progress(self) -> list:
        rows = []
        for reader in self.study.readers:
            session = ReaderSession(self.study, reader)
            rows.append({"reader": reader, "done": session.n_answered, "total": session.n_trials})
        return rows

    async def _coordinator(self, owner: str, tail: str):
        from aiohttp import web

        if owner != COORDINATOR:
            return self._not_found()
        rows = self.progress()
        if tail == "progress.json":
            return web.json_response({"study_id": self.study.study_id, "readers": rows})
        if tail != "":
            return self._not_found()
        body = "".join(
            f"<tr><td>{html.escape(r['reader'])}</td><td class='done'>{r['done']} / {r['total']}</td></tr>" for r in rows
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='10'>"
            "<title>Reader study progress</title><style>body{font-family:sans-serif;margin:2em}"
            "td,th{padding:.3em 1em;text-align:left}</style></head><body>"
            f"<h1>Reader study progress</h1><p>Study {html.escape(self.study.study_id)}; refreshed every 10 s.</p>"
            f"<table id='progress'><tr><th>Reader</th><th>Answered</th></tr>{body}</table></body></html>"
        )
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ reader pages

    async def _page_for(self, reader: str) -> Optional[PageProcess]:
        lock = self._locks.setdefault(reader, asyncio.Lock())
        async with lock:
            page = self.pages.get(reader)
            if page is None or not page.alive:
                page = PageProcess(self.study.root, reader, self.log_dir, self._key_dir)
                page.start()
                self.pages[reader] = page
            if await page.wait_listening():
                return page
            return None

    async def _session(self):
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(auto_decompress=False)
        return self._http

    async def _forward(self, request, reader: str, tail: str):
        from aiohttp import web

        page = await self._page_for(reader)
        if page is None:
            return web.Response(status=503, text="The reader page could not start; the coordinator's log says why.")
        url = f"http://127.0.0.1:{page.port}/{tail}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request, url.replace("http://", "ws://", 1), page.secret)
        http = await self._session()
        async with http.get(url, headers={"Accept-Encoding": request.headers.get("Accept-Encoding", "")}) as resp:
            body = await resp.read()
            headers = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "content-encoding")}
            headers["Cache-Control"] = "no-store"
            return web.Response(status=resp.status, body=body, headers=headers)

    async def _forward_websocket(self, request, url: str, secret: str):
        import aiohttp
        from aiohttp import web

        client = web.WebSocketResponse(max_msg_size=MAX_CLIENT_MESSAGE)
        await client.prepare(request)
        http = await self._session()
        try:
            upstream = await http.ws_connect(url, max_msg_size=0)
        except aiohttp.ClientError:
            await client.close()
            return client

        async def pump(src, dst, secret=None):
            first = secret is not None  # wslink's hello is the browser's first message: only it is rewritten
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(with_secret(msg.data, secret) if first else msg.data)
                    first = False
                else:
                    break

        to_page = asyncio.ensure_future(pump(client, upstream, secret))
        to_browser = asyncio.ensure_future(pump(upstream, client))
        await asyncio.wait([to_page, to_browser], return_when=asyncio.FIRST_COMPLETED)
        for task in (to_page, to_browser):
            task.cancel()
        await upstream.close()
        await client.close()
        return client


def with_secret(frame: bytes, secret: str) -> bytes:
    """A browser's websocket frame with the page process's key put into it if it is wslink's
    ``hello`` (a 12-byte header: message id, offset, size, little-endian; then msgpack), else the
    frame unchanged."""
    import msgpack

    if len(frame) < 12 or int.from_bytes(frame[4:8], "little") != 0 or \
            int.from_bytes(frame[8:12], "little") != len(frame) - 12:
        return frame  # not a whole message in one frame: hello always is
    try:
        msg = msgpack.unpackb(frame[12:], raw=False)
    except (ValueError, msgpack.exceptions.ExtraData, msgpack.exceptions.FormatError, msgpack.exceptions.StackError):
        return frame
    if not (isinstance(msg, dict) and msg.get("method") == "wslink.hello" and msg.get("args")
            and isinstance(msg["args"][0], dict)):
        return frame
    msg["args"][0]["secret"] = secret
    body = msgpack.packb(msg, use_bin_type=True)
    return frame[:8] + len(body).to_bytes(4, "little") + body


def links(tokens: Tokens, base_url: str) -> Dict[str, str]:
    """owner -> link, for every reader and the coordinator."""
    base = base_url.rstrip("/")
    out = {reader: f"{base}/r/{token}/" for reader, token in sorted(tokens.readers.items())}
    out[COORDINATOR] = f"{base}/c/{tokens.coordinator}/"
    return out


def serve(study_dir: str, host: str = "127.0.0.1", port: int = 8080, log_dir: Optional[str] = None,
          out=sys.stdout) -> int:
    """Serve the study until interrupted (Ctrl-C or SIGTERM). Prints one link per reader."""
    try:
        from aiohttp import web
    except ImportError as exc:
        raise InputError(f"{MISSING_WEB} ({exc})") from None
    study = Study.load(study_dir)
    try:  # before any link is printed: a busy port is the commonest mistake
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
            probe.bind((host, port))
    except OSError as exc:
        raise InputError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port.") from None
    tokens = load_or_create_tokens(study)
    gateway = Gateway(study, tokens, log_dir)
    shown = "localhost" if host in ("127.0.0.1", "localhost") else (socket.getfqdn() if host in ("0.0.0.0", "::") else host)
    urls = links(tokens, f"http://{shown}:{port}")
    for owner, url in urls.items():
        label = "coordinator (progress)" if owner == COORDINATOR else f"reader {owner}"
        print(f"{label}: {url}", file=out)
    print("Send each reader their own link; they need a web browser and nothing else. Ctrl-C stops.", file=out)
    out.flush()

    try:
        web.run_app(gateway.app(), host=host, port=port, print=None, handle_signals=True)
    except OSError as exc:
        raise InputError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port.") from None
    return 0
