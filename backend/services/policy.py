"""Who may do what, checked in the service layer (pages only hide what a session may not do).

A student (a session without the presenter passphrase, in classroom mode) may inspect, run the demo,
submit jobs within its quota and cancel or retry its own jobs. The presenter may also delete, rename
and upload checkpoints, cancel anyone's job, change the quotas and the allowed folders, and clear the
cache. Every service that destroys or spends takes `session=` and calls one of these first; a refusal
is `NotAllowed` / `QuotaExceeded` / `DiskBudgetExceeded` with a message the person can act on.
"""

from __future__ import annotations

from pathlib import Path

from backend import budget, classroom
from backend.access import Session, resolve
from backend.config import get_settings
from backend.errors import NotAllowed, QuotaExceeded
from backend.jobs.records import JobRecord

ACTIVE_STATES = ("queued", "running")


def require_presenter(session: Session | None, action: str) -> Session:
    """The session if it is the presenter; `NotAllowed` naming the action otherwise."""
    who = resolve(session)
    if not who.presenter:
        raise NotAllowed(
            f"Only the presenter may {action}. Enter the presenter passphrase in the sidebar "
            "(the teacher has it)."
        )
    return who


def may_cancel(session: Session | None, record: JobRecord) -> bool:
    """The presenter cancels any job, a student only the jobs it submitted."""
    who = resolve(session)
    return who.presenter or (record.owner is not None and record.owner == who.name)


def check_cancel(session: Session | None, record: JobRecord, action: str = "cancel") -> None:
    if not may_cancel(session, record):
        raise NotAllowed(
            f"Job {record.id} was submitted by {record.owner or 'the lab'}; you may {action} only your own "
            f"jobs (the presenter may {action} any)."
        )


def active_jobs(owner: str) -> int:
    from backend import jobs

    return sum(len(jobs.list_jobs(state=s, owner=owner, limit=10_000)) for s in ACTIVE_STATES)


def check_submit(session: Session | None, kind: str, config: dict) -> Session:
    """A student's job must fit its quota (count, model size, images, steps) and any folder it names
    must be allowed; everyone's submit needs room in the disk budget."""
    from backend import jobs

    who = resolve(session)
    dataset = config.get("dataset")
    if isinstance(dataset, dict) and dataset.get("kind") == "folder":
        check_folder(who, dataset.get("path") or "")
    if not who.presenter:
        quota = classroom.load().quota
        total = len(jobs.list_jobs(owner=who.name, limit=quota.max_jobs + 1))
        classroom.check_job(
            kind, config, owner=who.name, quota=quota, active=active_jobs(who.name), total=total
        )
    budget.make_room(0, what=f"this {kind} job")
    return who


def check_folder(session: Session | None, path: str | Path) -> Path:
    """The real path of a "folder on the server" dataset this session may use: any folder for the
    presenter; for a student one under an allowed root (symlinks followed, none leading outside), or a
    dataset zip it uploaded (kept under the uploads dir)."""
    who = resolve(session)
    uploads = get_settings().uploads_dir / "datasets"
    real = classroom.check_folder(path, restricted=False)
    if who.presenter or real == uploads.resolve() or uploads.resolve() in real.parents:
        return real
    return classroom.check_folder(path, restricted=True)


def check_upload(session: Session | None, size: int, filename: str) -> Session:
    """An upload must fit the per-upload limit, the student's per-session total and the disk budget;
    the messages name the user's file."""
    who = resolve(session)
    limit = get_settings().upload_limit_bytes
    if size > limit:
        raise QuotaExceeded(
            f"'{filename}' is {size / 1024**2:.1f} MB; uploads are limited to {limit / 1024**2:.0f} MB each."
        )
    budget.make_room(size, what=f"'{filename}'")
    classroom.count_upload(who.name, size, None if who.presenter else classroom.load().quota.max_upload_bytes)
    return who


def quota(session: Session | None = None) -> classroom.Quota:
    return classroom.load().quota


def set_quota(session: Session | None, values: dict) -> classroom.Quota:
    """The presenter changes the student quota (for every session, at once)."""
    require_presenter(session, "change the quotas")
    settings = classroom.load()
    settings.quota = classroom.Quota.from_dict({**vars(settings.quota), **values})
    classroom.save(settings)
    return settings.quota


def allow_folder(session: Session | None, path: str) -> list[Path]:
    """The presenter allows students to use folders under `path`; returns the allowed roots."""
    require_presenter(session, "allow folders on the server")
    real = classroom.check_folder(path, restricted=False)
    settings = classroom.load()
    if str(real) not in settings.folder_roots:
        settings.folder_roots.append(str(real))
        classroom.save(settings)
    return classroom.allowed_roots()


def allowed_folders(session: Session | None = None) -> list[Path]:
    return classroom.allowed_roots()


def disallow_folder(session: Session | None, path: str) -> list[Path]:
    require_presenter(session, "change the allowed folders")
    settings = classroom.load()
    if str(path) not in settings.folder_roots:
        raise NotAllowed(
            f"{path} was not allowed from this panel (it comes from FOOLING_LAB_FOLDER_ROOTS, or it is not "
            "allowed at all): change that setting and restart the lab to remove it."
        )
    settings.folder_roots = [p for p in settings.folder_roots if p != str(path)]
    classroom.save(settings)
    return classroom.allowed_roots()


def clear_cache(session: Session | None) -> int:
    """The presenter empties the result cache; returns the bytes it held."""
    from backend.cache import ResultCache

    require_presenter(session, "clear the cache")
    with ResultCache() as cache:
        held = cache.volume()
        cache.shrink_by(held)
    return held


def usage(session: Session | None = None) -> budget.Usage:
    return budget.usage()
