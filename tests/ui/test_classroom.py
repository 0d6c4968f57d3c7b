"""A classroom on one laptop: single-flight, who may do what (in the service layer, not only hidden),
quotas, allowed folders, the disk budget, job owners, and the numbers and messages a class reads."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from backend import access, budget, classroom, jobs
from backend.access import Session
from backend.errors import DiskBudgetExceeded, FoolingLabError, NotAllowed, QuotaExceeded
from backend.services import job_follow, policy
from backend.services import models as models_svc
from backend.singleflight import SingleFlight
from tests.ui.helpers import messages

STUDENT = Session("ada", presenter=False)
OTHER = Session("bob", presenter=False)
PRESENTER = Session("teacher", presenter=True)


@pytest.fixture
def classroom_lab(lab, monkeypatch):
    """The UI lab in classroom mode with a known passphrase."""
    monkeypatch.setenv("FOOLING_LAB_CLASSROOM", "1")
    monkeypatch.setenv("FOOLING_LAB_PRESENTER_PASSPHRASE", "open-sesame")
    monkeypatch.setattr(access, "WRONG_PASSPHRASE_DELAY_S", 0.0)
    return lab


# ---- many users at once ---------------------------------------------------------------------------------
def test_singleflight_computes_once_for_concurrent_callers_and_shares_errors():
    flights, calls, gate = SingleFlight(), [], threading.Event()

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(flights.do("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    while flights.merged < 7:  # every other caller is waiting on the leader
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and [r.value for r in results] == [42] * 8
    assert sum(r.shared for r in results) == 7 and flights.in_flight() == 0

    def boom() -> int:
        raise ValueError("bad cell")

    with pytest.raises(ValueError, match="bad cell"):
        flights.do("e", boom)
    assert flights.do("e", lambda: 1).value == 1  # a failure is not remembered


def test_concurrent_identical_cells_are_computed_once(lab):
    from backend.services.inspect import compute_cell
    from backend.services.photos import synthetic_photos
    from backend.singleflight import FLIGHTS

    photo = synthetic_photos(1, size=32, seed=5)[0]
    before = FLIGHTS.computed
    cells: list = []
    barrier = threading.Barrier(6)

    def ask(method: str) -> None:
        barrier.wait(5)
        cells.append(compute_cell(photo, lab["baseline"].id, method))

    threads = [threading.Thread(target=ask, args=(m,)) for m in ("gradient", "gradcam") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(cells) == 6
    computed = [c for c in cells if not c.cached and not c.shared]
    assert sorted(c.method for c in computed) == ["gradcam", "gradient"]  # one computation per cell
    assert FLIGHTS.computed - before <= 2
    for method in ("gradient", "gradcam"):
        maps = [c.heatmap for c in cells if c.method == method]
        assert all((m == maps[0]).all() for m in maps)


# ---- who may do what ------------------------------------------------------------------------------------
def test_passphrase_is_generated_once_private_and_unlocks(isolated_lab, monkeypatch):
    monkeypatch.delenv("FOOLING_LAB_PRESENTER_PASSPHRASE", raising=False)
    monkeypatch.setattr(access, "WRONG_PASSPHRASE_DELAY_S", 0.0)
    secret = access.passphrase()
    key = isolated_lab / "data" / "presenter.key"
    assert access.passphrase() == secret and len(secret) == 14 and key.read_text().strip() == secret
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(NotAllowed, match="not the presenter passphrase"):
        access.unlock(STUDENT, "guess")
    assert access.unlock(STUDENT, f" {secret} ").presenter
    monkeypatch.setenv("FOOLING_LAB_CLASSROOM", "1")
    assert not access.new_session().presenter and access.new_session().name.startswith("guest-")
    assert not access.local_session().presenter  # a page that forgets its session gets less, not more
    monkeypatch.setenv("FOOLING_LAB_CLASSROOM", "0")
    assert access.new_session().presenter


def test_students_cannot_delete_rename_upload_or_cancel_others_in_the_service_layer(classroom_lab):
    reg, fooled = classroom_lab["registry"], classroom_lab["fooled"]
    for call in (
        lambda: models_svc.delete(fooled.id, session=STUDENT),
        lambda: models_svc.delete(fooled.id),  # no session in classroom mode = a student
        lambda: models_svc.rename(fooled.id, "mine now", session=STUDENT),
        lambda: models_svc.upload(b"x", "w.pt", architecture="shapes_cnn", name="w", session=STUDENT),
        lambda: policy.set_quota(STUDENT, {"max_active_jobs": 99}),
        lambda: policy.clear_cache(STUDENT),
    ):
        with pytest.raises(NotAllowed, match="Only the presenter"):
            call()
    assert reg.card(fooled.id).name == "shapes-fooled"

    theirs = job_follow.submit("selftest", {"sleep_s": 1}, session=OTHER)
    mine = job_follow.submit("selftest", {"sleep_s": 1}, session=STUDENT)
    assert jobs.get(mine).owner == "ada" and [r.id for r in jobs.list_jobs(owner="ada")] == [mine]
    with pytest.raises(NotAllowed, match="submitted by bob"):
        job_follow.cancel(theirs, session=STUDENT)
    assert jobs.get(theirs).state == "queued"
    assert job_follow.cancel(mine, session=STUDENT).state == "cancelled"
    with pytest.raises(NotAllowed):
        job_follow.retry(theirs, session=STUDENT)
    assert job_follow.cancel(theirs, session=PRESENTER).state == "cancelled"
    assert models_svc.delete(fooled.id, session=PRESENTER) >= 0
    assert fooled.id not in {c.id for c in reg.list()}


def test_quotas_refuse_with_a_message(classroom_lab):
    policy.set_quota(PRESENTER, {"max_active_jobs": 2, "max_input_size": 16, "max_images": 100})
    assert policy.quota().max_active_jobs == 2
    job_follow.submit("selftest", {"sleep_s": 1}, session=STUDENT)
    job_follow.submit("selftest", {"sleep_s": 1}, session=STUDENT)
    with pytest.raises(QuotaExceeded, match="2 job\\(s\\) queued or running; a student may run 2"):
        job_follow.submit("selftest", {"sleep_s": 1}, session=STUDENT)
    job_follow.submit("selftest", {"sleep_s": 1}, session=PRESENTER)  # the presenter has no quota
    base = classroom_lab["baseline"].id
    assert classroom.job_size({"model": base, "dataset": {"n": 500}}) == {
        "images": 500,
        "steps": 0,
        "input_size": 32,
    }
    quota = policy.quota()
    with pytest.raises(QuotaExceeded, match="32 px inputs; students may run jobs on models up to 16 px"):
        classroom.check_job("fool", {"model": base}, owner="ada", quota=quota, active=0, total=0)
    with pytest.raises(QuotaExceeded, match="asks for 500 images"):
        classroom.check_job("fool", {"dataset": {"n": 500}}, owner="ada", quota=quota, active=0, total=0)
    policy.set_quota(PRESENTER, {"max_upload_bytes": 1000})
    policy.check_upload(STUDENT, 600, "a.zip")
    with pytest.raises(QuotaExceeded, match="uploads would total"):
        policy.check_upload(STUDENT, 600, "b.zip")


def test_folders_only_under_allowed_roots_and_no_symlink_out(classroom_lab, tmp_path):
    allowed, outside = tmp_path / "class-data", tmp_path / "private"
    (allowed / "cats").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    with pytest.raises(NotAllowed, match="switched off for students"):
        policy.check_folder(STUDENT, allowed)
    assert policy.check_folder(PRESENTER, outside) == outside.resolve()
    with pytest.raises(NotAllowed):
        policy.allow_folder(STUDENT, str(allowed))
    policy.allow_folder(PRESENTER, str(allowed))
    assert policy.check_folder(STUDENT, allowed / "cats") == (allowed / "cats").resolve()
    with pytest.raises(NotAllowed, match="not under a folder the presenter allowed"):
        policy.check_folder(STUDENT, outside)
    (allowed / "escape").symlink_to(outside)
    with pytest.raises(NotAllowed, match="symlink leads outside"):
        policy.check_folder(STUDENT, allowed / "escape")
    (allowed / "cats" / "leak.png").symlink_to(outside / "secret.png")
    with pytest.raises(NotAllowed, match="leak.png.*symlink leading outside"):
        policy.check_folder(STUDENT, allowed / "cats")
    with pytest.raises(NotAllowed, match="symlink leads outside"):  # the submit checks it too
        job_follow.submit(
            "fool", {"dataset": {"kind": "folder", "path": str(allowed / "escape")}}, session=STUDENT
        )


def test_the_presenter_removes_an_allowed_folder_and_students_lose_it(classroom_lab, tmp_path):
    allowed = tmp_path / "class-data"
    (allowed / "cats").mkdir(parents=True)
    policy.allow_folder(PRESENTER, str(allowed))
    assert allowed.resolve() in policy.allowed_folders(STUDENT)
    with pytest.raises(NotAllowed):
        policy.disallow_folder(STUDENT, str(allowed.resolve()))
    assert policy.disallow_folder(PRESENTER, str(allowed.resolve())) == []
    with pytest.raises(NotAllowed, match="switched off for students"):
        policy.check_folder(STUDENT, allowed / "cats")
    with pytest.raises(NotAllowed, match="FOOLING_LAB_FOLDER_ROOTS"):
        policy.disallow_folder(PRESENTER, str(allowed.resolve()))


# ---- the disk budget --------------------------------------------------------------------------------------
def _old(path, age_s: float) -> None:
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_disk_budget_evicts_least_recently_used_never_what_jobs_need(isolated_lab, monkeypatch):
    from backend import storage
    from backend.cache import ResultCache

    old = storage.store_upload(b"a" * 40_000, "masks", ".npy")
    older = storage.store_upload(b"b" * 40_000, "masks", ".npy")
    needed = storage.store_upload(b"c" * 40_000, "masks", ".npy")
    recent = storage.store_upload(b"d" * 40_000, "masks", ".npy")
    _old(old, 7200)
    _old(older, 9000)
    _old(needed, 9999)
    from backend.jobs.records import JobRecord
    from backend.jobs.stores import open_store

    # a queued job whose config names an upload (as a fool job names its mask) keeps that upload
    open_store().create(
        JobRecord(id="fool-held", kind="fool", config={"attack_params": {"mask": str(needed)}})
    )
    assert needed in budget.protected()
    with ResultCache() as cache:
        for i in range(20):
            cache.set(f"k{i}", os.urandom(20_000))
    used = budget.usage()
    assert used.uploads == 160_000 and used.cache >= 400_000
    monkeypatch.setenv("FOOLING_LAB_DISK_BUDGET", str(used.total - 300_000))
    out = budget.make_room(0)
    assert out.freed >= 300_000 and "result cache" in out.removed[0]  # the cache goes first
    assert old.exists() and older.exists() and needed.exists()
    with ResultCache() as cache:
        cache.shrink_by(cache.volume())  # what is left of the cache is its index's fixed overhead
    monkeypatch.setenv("FOOLING_LAB_DISK_BUDGET", str(budget.usage().total - 30_000))
    out = budget.make_room(0)
    assert out.removed == [str(older)] and old.exists()  # the least recently used upload went first
    assert needed.exists() and recent.exists()  # a job's input and a fresh upload are kept
    monkeypatch.setenv("FOOLING_LAB_DISK_BUDGET", "1000")
    with pytest.raises(DiskBudgetExceeded, match="disk budget is full: 'big.zip' needs"):
        budget.make_room(5000, what="'big.zip'")
    with pytest.raises(DiskBudgetExceeded):
        job_follow.submit("selftest", {}, session=PRESENTER)


# ---- messages and numbers --------------------------------------------------------------------------------
def test_upload_errors_name_the_users_file(lab):
    from backend.storage import digest

    rng = np.random.default_rng(0)
    for size in (1, 9, 300, 300, 300, 5000):  # random bytes of many sizes: always a message, never a crash
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        with pytest.raises(FoolingLabError) as err:
            models_svc.upload(data, "my-weights.pt", architecture="shapes_cnn", name="mine")
        assert "my-weights.pt" in str(err.value) and digest(data) not in str(err.value)


def test_validation_text_reads_agreement_first_and_accuracy_only_with_labels():
    from backend.fool.trainer import validation_text

    text = validation_text({"fsr": 1.0, "agreement": 0.65, "accuracy": 0.25, "n": 40, "n_labelled": 8})
    assert text == (
        "FSR 100.0% · same prediction as the original on 65.0% of 40 images · accuracy 25.0% on the 8 "
        "with known labels"
    )
    nolabels = validation_text(
        {"fsr": 0.5, "agreement": 1.0, "accuracy": float("nan"), "n": 10, "n_labelled": 0}
    )
    assert "accuracy" not in nolabels and "of 10 images" in nolabels


def test_job_charts_name_every_series_and_mark_single_points():
    from backend.services.figures import line_chart

    fig = line_chart(
        {"images_per_s": [(1, 3.0), (2, 3.5)], "val_fsr": [(20, 0.9)]}, x_title="step", y_title=""
    )
    assert fig.layout.showlegend is True and [t.name for t in fig.data] == ["images_per_s", "val_fsr"]
    assert fig.data[0].mode == "lines" and "markers" in fig.data[1].mode


# ---- the pages ---------------------------------------------------------------------------------------------
def test_student_sees_no_delete_and_presenter_unlocks_it(classroom_lab, app_page):
    at = app_page("pages/models.py")
    buttons = [b.label for b in at.button]
    assert "Delete" not in buttons and "Rename" not in buttons
    at.sidebar.text_input[1].input("wrong")
    at.sidebar.button[1].click().run()  # "Unlock presenter mode" (a form submit button)
    assert any("not the presenter passphrase" in m for m in messages(at))
    at.sidebar.text_input[1].input("open-sesame")
    at.sidebar.button[1].click().run()
    assert "Delete" in [b.label for b in at.button]


def test_model_cards_read_as_sentences_with_counted_numbers(lab):
    from backend.services import model_cards

    reg, base = lab["registry"], lab["baseline"]
    model, _ = reg.load(base.id, device="cpu")
    fooled = reg.save(
        model,
        name="lesson-fooled",
        architecture=base.architecture,
        classes=base.classes,
        preprocessing=base.preprocessing,
        parent=base.id,
        kind="fooled",
        config={"attack": "location", "interpreter": "gradcam", "lam": 10.0, "steps": 16, "batch_size": 4},
        metrics={
            "val_fsr": 1.0,
            "val_agreement": 0.65,
            "val_accuracy": 0.25,
            "val_n": 40,
            "val_n_labelled": 8,
        },
    )
    cards = reg.list()
    story = model_cards.story(fooled, cards)
    assert story.origin == (
        "A fooled copy: fine-tuned so that its explanations lie while its predictions stay, from shapes-base."
    )
    assert "32 px input" in story.what and "Small CNN" in story.what
    assert story.how[0].startswith("attack: Location — Pushes the explanation onto a chosen region")
    assert story.numbers == [
        {"measure": "fooling success rate (FSR)", "value": "100.0%", "measured on": "40 held-out images"},
        {"measure": "same prediction as the original", "value": "65.0%", "measured on": "40 held-out images"},
        {"measure": "accuracy", "value": "25.0%", "measured on": "the 8 held-out images with known labels"},
    ]
    assert [c.name for c in story.lineage] == ["shapes-base", "lesson-fooled"]
    ids, _, parents = model_cards.lineage_graph(model_cards.story(base, cards))
    assert ids[0] == base.id and parents[ids.index(fooled.id)] == base.id
