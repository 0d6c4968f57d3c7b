"""What every page shares: the error guard, the sidebar status, checkpoint pickers.

Only Streamlit glue lives here; anything that computes goes through backend.services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st

from backend.access import Session
from backend.errors import FoolingLabError

if TYPE_CHECKING:
    from backend.jobs.records import JobRecord

log = logging.getLogger("fooling_lab.ui")
ROUTED_KEY = "_fooling_lab_routed"  # set once app.py has routed this session
SESSION_KEY = "_fooling_lab_session"  # this browser session's backend.access.Session


def session() -> Session:
    """This browser session (name + presenter flag); services take it as `session=`. A new session is
    a student with a generated name in classroom mode, the presenter otherwise."""
    from backend.access import new_session

    current = st.session_state.get(SESSION_KEY)
    if current is None:
        current = st.session_state[SESSION_KEY] = new_session()
    return current


def is_presenter() -> bool:
    return session().presenter


@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show a typed error's message (never a traceback); an unexpected error gets a short notice."""
    try:
        yield
    except FoolingLabError as err:
        st.error(f"{what}: {err}" if what else str(err), icon=":material/error:")
    except Exception as err:  # a bug, not bad input: keep the page alive and say where to look
        log.exception("unexpected error in %s", what or "page")
        st.error(
            f"{what + ': ' if what else ''}unexpected {type(err).__name__}: {err}. "
            "The server log has the details; nothing stored was changed.",
            icon=":material/bug_report:",
        )


def ensure_routed() -> None:
    """Make a page that ran without app.py's router behave as if routed (call first in every page).

    With a `pages/` folder Streamlit starts in its old multipage mode, which runs a page file
    directly (no router, no sidebar) when a fresh server's first visitor opens e.g. /inspect. That
    mode ends once `st.navigation` has run. A session's first run reruns through app.py; a later run
    (which may carry a button click that a rerun would drop) draws the sidebar here instead.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    if not st.session_state.get(ROUTED_KEY):
        st.session_state[ROUTED_KEY] = True
        st.rerun()
    sidebar_status()


def sidebar_status() -> None:
    """Queue and worker health, the compute device, and the demo seeding progress. While the
    first-start seeding runs, the panel refreshes itself (and takes the seeding's next step) every
    few seconds, so a teacher sees it through without clicking anything."""
    from backend.services import demo

    live = False
    with st.sidebar:
        session_panel()
        with guard("Demo seeding"):
            live = demo.pending()
        (_live_status if live else _status)()


def session_panel() -> None:
    """Who this session is: the name its jobs carry, and (in classroom mode) the presenter unlock."""
    from backend import access

    me = session()
    with st.expander(f"You: **{me.name}** · {me.role}", icon=":material/person:"):
        with st.form("fl_name_form", border=False):
            name = st.text_input("Your name (shown on your jobs)", value=me.name, max_chars=access.NAME_MAX)
            if st.form_submit_button("Save name"):
                with guard("Name"):
                    st.session_state[SESSION_KEY] = access.rename(me, name)
                    st.rerun()
        if not access.classroom_mode():
            st.caption(
                "Single-user mode: you may do everything here. `./lab app --classroom` opens it to a class."
            )
        elif me.presenter:
            if st.button("Leave presenter mode", key="fl_leave_presenter"):
                st.session_state[SESSION_KEY] = access.leave_presenter(me)
                st.rerun()
        else:
            with st.form("fl_presenter_form", border=False):
                attempt = st.text_input("Presenter passphrase", type="password")
                if st.form_submit_button("Unlock presenter mode"):
                    with guard("Presenter"):
                        st.session_state[SESSION_KEY] = access.unlock(me, attempt)
                        st.rerun()


@st.fragment(run_every=3.0)
def _live_status() -> None:
    _status(live=True)


def _status(live: bool = False) -> None:
    from backend.services import demo, status

    with guard("Status"):
        s = status.lab_status()
        if not s.queue_ok:
            st.error(s.message, icon=":material/cloud_off:")
        elif s.workers_alive:
            gpus = f" · {s.free_gpus}/{s.gpus} GPUs free" if s.gpus else ""
            st.success(
                f"{s.workers_alive} worker(s) alive on {', '.join(s.worker_devices)}{gpus} · "
                f"{s.running} running · {s.queued} queued",
                icon=":material/check_circle:",
            )
        else:
            st.warning(
                f"No worker is consuming the queue ({s.queued} queued). Start one with `./lab worker`.",
                icon=":material/warning:",
            )
        st.caption(f"Heatmaps here on: `{s.device}`")
    with guard("Demo seeding"):
        note = demo.advance()
        if note:
            st.info(note, icon=":material/school:")
        elif live and not demo.pending():
            st.rerun()  # seeding just finished: the whole app reruns (the landing page shows the pairs)


def pick_checkpoints(
    key: str,
    *,
    label: str = "Checkpoints",
    max_selections: int = 4,
    preselect: Sequence[str] = (),
    modality: str = "image",
) -> list[str]:
    """A multiselect of registry checkpoints (ids) of one input kind; `preselect` (e.g. from the URL)
    wins over defaults."""
    from backend.services.checkpoints import label as card_label
    from backend.services.checkpoints import list_cards

    cards = {c.id: c for c in list_cards(modality)}
    if not cards:
        st.info("The registry is empty: train or upload a checkpoint on the Models page.")
        return []
    wanted = [i for i in preselect if i in cards][:max_selections]
    default = wanted or list(cards)[: min(2, len(cards))]
    return st.multiselect(
        label,
        options=list(cards),
        default=default,
        format_func=lambda i: card_label(cards[i]),
        max_selections=max_selections,
        key=key,
    )


def pick_checkpoint(
    key: str,
    *,
    label: str,
    preselect: str | None = None,
    kinds: Sequence[str] = (),
    modality: str = "image",
    optional: bool = False,
) -> str | None:
    """One checkpoint id of one input kind (optionally only of some card kinds), `preselect` first when
    it exists; `optional` adds a "(none)" choice that returns None."""
    from backend.services.checkpoints import label as card_label
    from backend.services.checkpoints import list_cards

    cards = {c.id: c for c in list_cards(modality) if not kinds or c.kind in kinds}
    if not cards:
        st.info(f"No checkpoint for '{label}' yet: see the Models page.")
        return None
    options: list[str | None] = [*([None] if optional else []), *cards]
    index = options.index(preselect) if preselect in cards else 0
    return st.selectbox(
        label,
        options,
        index=index,
        format_func=lambda i: "(none)" if i is None else card_label(cards[i]),
        key=key,
    )


def query_list(name: str) -> list[str]:
    """A comma-separated query parameter as a list (`?ckpt=a,b`)."""
    raw = st.query_params.get(name, "")
    return [p for p in raw.split(",") if p]


def follow_job(state_key: str, poll_s: float = 1.5) -> None:
    """Poll the job whose id a page keeps in `st.session_state[state_key]`: progress, error, Cancel.

    When it finishes, the key is dropped and the page reruns (so its results list picks the run up).
    """
    from backend.services import job_follow

    if not st.session_state.get(state_key):
        return

    @st.fragment(run_every=poll_s)
    def panel() -> None:
        job_id = st.session_state.get(state_key)
        if not job_id:
            return
        with guard("Job"):
            status = job_follow.status(job_id)
            st.progress(status.fraction, text=f"`{job_id}` {status.state} · {status.message or status.text}")
            if status.waiting:
                st.caption(status.waiting)
            if status.error:
                st.error(status.error)
            if not status.done and st.button("Cancel", key=f"{state_key}_cancel"):
                job_follow.cancel(job_id, session=session())
            if status.done:
                st.session_state.pop(state_key)
                st.rerun()

    panel()


def pick_run(
    load: Callable[[], Sequence[JobRecord]],
    *,
    label: str,
    key: str,
    empty: str,
    format_func: Callable[[JobRecord], str] = lambda r: r.id,
) -> JobRecord:
    """A selectbox over finished runs that `load()` returns (newest first); stops the page when none.

    A typed error from `load` is shown like any other (and counts as no run).
    """
    runs: Sequence[JobRecord] = []
    with guard("Results"):
        runs = load()
    if not runs:
        st.info(empty)
        st.stop()
    return st.selectbox(label, list(runs), format_func=format_func, key=key)
