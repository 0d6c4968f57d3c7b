"""Who is asking: a session's name and whether it unlocked presenter mode.

A classroom runs one lab for thirty people. Each browser session is a `Session`: a name the student
types once (a generated one until then), which the lab writes on the jobs it submits, and a presenter
flag that only the presenter passphrase sets. The services take `session=` and ask
`backend.services.policy` whether it may do what it asks; the pages only hide what it may not.

Two modes (`settings.classroom`): off (the default; the app listens on localhost only), the one person
at the machine is the presenter; on (`./lab app --classroom`), every session starts as a student.
The passphrase is `FOOLING_LAB_PRESENTER_PASSPHRASE`, or one generated on first use into
`<data>/presenter.key` (mode 0600), which `./lab app` prints at start.

Where a deployment has an identity provider, Streamlit's `st.login` (OIDC) can name the session and a
list of presenter e-mails can replace the passphrase (README, "Running a class"); nothing here needs it.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, replace

from backend.config import get_settings
from backend.errors import InvalidConfig, NotAllowed

NAME_MAX = 32
_NAME_OK = re.compile(r"^[\w .@'-]+$")
_WORDS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a projector and typed on a phone
WRONG_PASSPHRASE_DELAY_S = 0.5  # each wrong guess costs this long (a brute force from a phone is slow)


@dataclass(frozen=True)
class Session:
    """One browser session: its display name (the owner written on its jobs) and its rights."""

    name: str
    presenter: bool = False

    @property
    def role(self) -> str:
        return "presenter" if self.presenter else "student"


def classroom_mode() -> bool:
    """True when sessions start as students (the app is open to the local network)."""
    return get_settings().classroom


def guest_name() -> str:
    """A generated session name until the student types one ("guest-k3f9")."""
    return "guest-" + "".join(secrets.choice(_WORDS) for _ in range(4))


def new_session(name: str | None = None) -> Session:
    """A fresh session: a student in classroom mode, the presenter otherwise."""
    return Session(clean_name(name) if name else guest_name(), presenter=not classroom_mode())


def local_session() -> Session:
    """Who calls a service without a session (the command line, a script): the machine's own user
    outside classroom mode; in classroom mode a student, so a page that forgets to pass its session
    gets less, never more."""
    return Session("local", presenter=not classroom_mode())


def resolve(session: Session | None) -> Session:
    return session if session is not None else local_session()


def clean_name(text: str) -> str:
    """A session name as typed, trimmed; `InvalidConfig` says what is wrong with it."""
    name = " ".join(str(text).split())
    if not name:
        raise InvalidConfig("Type a name (letters, digits, spaces, . - _ @).")
    if len(name) > NAME_MAX:
        raise InvalidConfig(f"A name has at most {NAME_MAX} characters.")
    if not _NAME_OK.match(name):
        raise InvalidConfig("A name may use letters, digits, spaces and . - _ @ ' only.")
    return name


def rename(session: Session, name: str) -> Session:
    return replace(session, name=clean_name(name))


def generate_passphrase() -> str:
    """Three groups of four easy-to-read characters, e.g. `k3fr-9wzt-pmq2`."""
    return "-".join("".join(secrets.choice(_WORDS) for _ in range(4)) for _ in range(3))


def passphrase() -> str:
    """The presenter passphrase: the setting, else the generated one kept in `<data>/presenter.key`
    (created on first call, readable by this user only)."""
    settings = get_settings()
    if settings.presenter_passphrase:
        return settings.presenter_passphrase
    path = settings.presenter_key
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(generate_passphrase() + "\n")
    return path.read_text().strip()


def passphrase_source() -> str:
    """Where the passphrase comes from, for the start-up message."""
    if get_settings().presenter_passphrase:
        return "FOOLING_LAB_PRESENTER_PASSPHRASE"
    return str(get_settings().presenter_key)


def unlock(session: Session, attempt: str) -> Session:
    """The same session in presenter mode if `attempt` is the passphrase; `NotAllowed` otherwise."""
    if hmac.compare_digest(str(attempt).strip().encode(), passphrase().encode()):
        return replace(session, presenter=True)
    time.sleep(WRONG_PASSPHRASE_DELAY_S)
    raise NotAllowed("That is not the presenter passphrase (it was printed when the lab started).")


def leave_presenter(session: Session) -> Session:
    """Back to a student (outside classroom mode a session is always the presenter)."""
    return replace(session, presenter=not classroom_mode())
