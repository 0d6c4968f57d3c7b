"""A Streamlit session without a browser: Streamlit's own websocket protocol, spoken directly.

The classroom load benchmark (`classroom_load.py --client protocol`) needs to know what the lab's
server delivers to thirty students. A simulated browser costs this 2-core machine ~4.5 CPU s of
Streamlit's frontend per student, so thirty of them measure the simulated phones, not the laptop; on a
real classroom each phone renders for itself. This client does what the frontend does on the wire
and nothing else:

- connects to the served app's `/_stcore/stream` websocket (subprotocol `streamlit`);
- sends `BackMsg.rerun_script` with a `ClientState`: the page (`page_script_hash`), the query string,
  the widget states the user has set (`WidgetStates`: a toggle's `bool_value`, a radio's
  `string_value`, a segmented control's `string_array_value`, a button's `trigger_value`), and, for a
  widget drawn inside an `st.fragment`, that fragment's id (the frontend reruns only the fragment);
- reads every `ForwardMsg`: `new_session` (the page that runs), `navigation` (the app's pages and
  their script hashes), `delta` (elements: text, widgets with their ids and labels, images with their
  media URLs, each tagged with the fragment that drew it) and `script_finished`;
- fetches a media URL over HTTP like the browser's `<img>` does (that is when an image has loaded),
  and, opening the app, its page and the static files that page links (the frontend's scripts and
  styles, six at a time like a browser; the chunks the frontend loads later by itself are not).

It keeps no element tree: a caller waits for an element drawn by the run its last request started
(by kind, label, key or text; a run starts with `new_session`, also a fragment's run), so a step waits
for what the server sent for that step, never for what an earlier run still had in flight.
It never sends `cached_message_hashes`, so the server sends every message in full.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState


class ProtocolError(RuntimeError):
    """The server closed the session, or did not send what a step waits for in time."""


@dataclass(frozen=True)
class Element:
    """One element the server drew: its kind (`markdown`, `imgs`, `checkbox`, `radio`, ...), its
    protobuf, the fragment that drew it ("" outside fragments) and when it arrived."""

    kind: str
    proto: Any
    fragment_id: str
    at: float

    @property
    def label(self) -> str:
        return getattr(self.proto, "label", "")

    @property
    def text(self) -> str:
        return getattr(self.proto, "body", "")

    def has_key(self, key: str) -> bool:
        """Streamlit writes a keyed widget's id as `$$ID-<hash>-<key>`."""
        return getattr(self.proto, "id", "").endswith(f"-{key}")


@dataclass
class Session:
    """One browser session's worth of protocol against `base_url` (e.g. http://127.0.0.1:8501)."""

    base_url: str
    page_hash: str = ""  # the page running now (from new_session)
    query_string: str = ""
    pages: dict[str, str] = field(default_factory=dict)  # page name -> script hash (from navigation)
    errors: list[str] = field(default_factory=list)  # error boxes, exceptions, compile errors seen
    _ws: Any = None
    _reader: asyncio.Task | None = None
    _seen: list[Element] = field(default_factory=list)  # elements since the last request
    _finished: int = 0  # script_finished messages since the last request
    _started: bool = True  # the run asked for by the last request has started (its new_session came)
    _widgets: dict[str, WidgetState] = field(default_factory=dict)  # widget id -> the state set
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: str | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        url = self.base_url.replace("http", "ws", 1).rstrip("/") + "/_stcore/stream"
        self._ws = await websockets.connect(
            url, subprotocols=["streamlit"], max_size=None, open_timeout=timeout, ping_interval=None
        )
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    # ---- what the frontend sends -------------------------------------------------------------------
    async def open_page(self, page_hash: str = "", query_string: str = "") -> None:
        """Navigate (a full run of `page_hash`; "" = the default page), as a page link does: the
        widgets of the page left behind are dropped."""
        self._widgets.clear()
        self.page_hash, self.query_string = page_hash, query_string
        await self._rerun()

    async def set_widget(self, widget: Element, **value: Any) -> None:
        """Give `widget` a value (`bool_value=True`, `string_value="x"`, `string_array_value=["x"]`,
        `trigger_value=True`) and rerun, as the frontend does on an interaction: only the widget's
        fragment when it was drawn in one, the whole page otherwise."""
        state = WidgetState(id=widget.proto.id)
        for name, v in value.items():
            if name == "string_array_value":
                state.string_array_value.data.extend(v)
            else:
                setattr(state, name, v)
        self._widgets[state.id] = state
        await self._rerun(widget.fragment_id)
        if "trigger_value" in value:  # a button's click is for one run only
            del self._widgets[state.id]

    async def _rerun(self, fragment_id: str = "") -> None:
        msg = BackMsg()
        rerun = msg.rerun_script
        rerun.query_string, rerun.page_script_hash = self.query_string, self.page_hash
        rerun.fragment_id = fragment_id
        rerun.widget_states.widgets.extend(self._widgets.values())
        self._seen, self._finished, self._started = [], 0, False
        self._arrived.clear()
        if self._closed:
            raise ProtocolError(self._closed)
        await self._ws.send(msg.SerializeToString())

    # ---- what comes back ---------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self._receive(data)
        except websockets.ConnectionClosed as err:
            self._closed = f"the server closed the session ({err})"
        finally:
            self._closed = self._closed or "the server closed the session"
            self._arrived.set()

    def _receive(self, data: bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if kind == "new_session":  # a run starts: what was still in flight from an earlier run is done
            self.page_hash = msg.new_session.page_script_hash or self.page_hash
            self._started = True
        elif not self._started:
            return
        elif kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
        elif kind == "script_finished":
            self._finished += 1
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self.errors.append(f"compile error: {msg.session_event.script_compilation_exception.message}")
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            what = element.WhichOneof("type")
            proto = getattr(element, what)
            if what == "exception":
                self.errors.append(f"{proto.type}: {proto.message}")
            elif what == "alert" and proto.format == Alert.ERROR:
                self.errors.append(proto.body)
            self._seen.append(Element(what, proto, msg.delta.fragment_id, time.perf_counter()))
        else:
            return
        self._arrived.set()

    async def wait_for(
        self, test: Callable[[Element], bool], what: str, timeout: float, count: int = 1
    ) -> list[Element]:
        """The first `count` elements since the last request that pass `test`, once they have arrived
        (ProtocolError naming `what` after `timeout` s or when the session closes)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self._seen if test(e)]
            if len(found) >= count:
                return found[:count]
            if self._closed:
                raise ProtocolError(f"{self._closed} while waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no {what} within {timeout:.0f} s ({len(found)} of {count})")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def widget(self, kind: str, timeout: float, label: str = "", key: str = "") -> Element:
        """The widget of `kind` with this label or key drawn since the last request."""
        name = f"{kind} " + (f"'{label}'" if label else f"key={key}")
        (found,) = await self.wait_for(
            lambda e: e.kind == kind and ((label and e.label == label) or (key and e.has_key(key))),
            name,
            timeout,
        )
        return found

    async def load_frontend(self, timeout: float = 30.0) -> int:
        """GET the app's page and every static file it links, as a browser opening the address does
        (with an empty cache); returns the bytes received."""
        page = await self.fetch("/", timeout)
        links = re.findall(r'(?:src|href)="\./(static/[^"]+)"', page.decode("utf-8", "replace"))
        gate = asyncio.Semaphore(6)  # a browser's connections per host

        async def one(path: str) -> int:
            async with gate:
                return len(await self.fetch(f"/{path}", timeout))

        return len(page) + sum(await asyncio.gather(*(one(p) for p in links)))

    async def fetch(self, url: str, timeout: float = 30.0) -> bytes:
        """GET a URL relative to the app (a media URL, like the browser's `<img>`): its bytes when the
        server answers 200, ProtocolError otherwise."""
        full = url if url.startswith("http") else self.base_url.rstrip("/") + url

        def get() -> bytes:
            with urllib.request.urlopen(full, timeout=timeout) as r:
                if r.status != 200:
                    raise ProtocolError(f"GET {url}: HTTP {r.status}")
                return r.read()

        try:
            return await asyncio.to_thread(get)
        except OSError as err:
            raise ProtocolError(f"GET {url}: {err}") from err
