"""Checkpoint registry: identical round trip, sha256 checks, atomic writes, lineage, uploads' errors."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import backend.models.registry as registry_module
from backend.errors import (
    CheckpointNotFound,
    CorruptCheckpoint,
    IncompatibleCheckpoint,
    InvalidConfig,
    TamperedCheckpoint,
    UnsafeCheckpoint,
)
from backend.models import zoo
from backend.models.registry import Registry, sha256_file


def _save(reg, model=None, **kw):
    model = model or zoo.build("shapes_cnn")
    spec = zoo.spec("shapes_cnn")
    args = dict(name="m", architecture="shapes_cnn", classes=spec.classes(), preprocessing=spec.preprocessing)
    args.update(kw)
    return reg.save(model, kind=args.pop("kind", "trained"), **args)


def test_save_load_identical_outputs(isolated_lab):
    reg = Registry()
    torch.manual_seed(1)
    model = zoo.build("shapes_cnn")
    card = _save(reg, model, config={"seed": 1}, metrics={"val_accuracy": 0.5})
    loaded, card2 = reg.load(card.id, device="cpu")
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert card2 == card
    assert len(card.sha256) == 64 and card.num_classes == 5
    assert reg.root == isolated_lab / "models"
    assert {p.name for p in reg.root.iterdir()} == {f"{card.id}.safetensors", f"{card.id}.json"}


def test_tampered_weights_refused(isolated_lab):
    reg = Registry()
    card = _save(reg)
    path = reg.root / f"{card.id}.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedCheckpoint, match="modified or corrupted"):
        reg.load(card.id)


def test_crash_while_writing_leaves_nothing_visible(isolated_lab, monkeypatch):
    reg = Registry()
    before = _save(reg)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(registry_module, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(reg, name="half")
    monkeypatch.undo()
    monkeypatch.setattr(Registry, "_write_card", lambda self, card: crash())
    with pytest.raises(KeyboardInterrupt):
        _save(reg, name="no card")
    monkeypatch.undo()
    assert [c.id for c in reg.list()] == [before.id]
    assert not list(reg.root.glob("*.tmp"))  # temp files cleaned up


def test_lineage_rename_metrics_delete(isolated_lab):
    reg = Registry()
    root = _save(reg, name="base")
    child = _save(reg, name="fooled once", parent=root.id, kind="fooled")
    grandchild = _save(reg, name="fooled twice", parent=child.id, kind="fooled")
    assert [c.id for c in reg.lineage(grandchild.id)] == [root.id, child.id, grandchild.id]
    assert reg.rename(child.id, " renamed ").name == "renamed"
    assert reg.update_metrics(child.id, {"fsr": 0.9}).metrics == {"fsr": 0.9}
    assert reg.card(child.id).name == "renamed"
    reg.delete(root.id)
    assert [c.id for c in reg.lineage(grandchild.id)] == [child.id, grandchild.id]
    with pytest.raises(CheckpointNotFound):
        reg.card(root.id)
    with pytest.raises(CheckpointNotFound):
        reg.card("../etc/passwd")
    with pytest.raises(CheckpointNotFound):
        _save(reg, parent="no-such-id")


def test_upload_safetensors_and_wrapped_pt(isolated_lab, tmp_path):
    reg = Registry()
    model = zoo.build("cifar_vgg16")
    st = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(st))
    pt = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, pt)
    x = torch.randn(1, 3, 32, 32)
    for path in (st, pt):
        card = reg.upload(path, architecture="cifar_vgg16", name="user")
        loaded, _ = reg.load(card.id)
        assert card.kind == "uploaded" and card.classes[0] == "airplane"
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


def test_upload_wrong_architecture_lists_keys(isolated_lab, tmp_path):
    path = tmp_path / "shapes.safetensors"
    save_file(zoo.build("shapes_cnn").state_dict(), str(path))
    with pytest.raises(IncompatibleCheckpoint) as err:
        Registry().upload(path, architecture="cifar_vgg16", name="x")
    assert not isinstance(err.value, CorruptCheckpoint)  # readable, just the wrong model
    msg = str(err.value)
    assert "missing" in msg and "features.0.weight" in msg and "unexpected" in msg
    # same architecture, other number of classes: a shape mismatch
    torch.save(zoo.build("shapes_cnn", 7).state_dict(), tmp_path / "k7.pt")
    with pytest.raises(IncompatibleCheckpoint, match=r"shape mismatch: classifier.weight: file \(7, 48\)"):
        Registry().upload(tmp_path / "k7.pt", architecture="shapes_cnn", name="x")
    assert Registry().list() == []


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_upload_truncated_or_empty(isolated_lab, tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    state = zoo.build("shapes_cnn").state_dict()
    torch.save(state, good) if suffix == ".pt" else save_file(state, str(good))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptCheckpoint, match="corrupt or truncated"):
        Registry().upload(cut, architecture="shapes_cnn", name="x")
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(CorruptCheckpoint, match="empty"):
        Registry().upload(empty, architecture="shapes_cnn", name="x")


class _Payload:
    """A pickle that would write a file when unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def test_malicious_pickle_refused_and_not_run(isolated_lab, tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": zoo.build("shapes_cnn").state_dict(), "x": _Payload(target)}, path)
    with pytest.raises(UnsafeCheckpoint, match=r"torch.save\(model.state_dict\(\)"):
        Registry().upload(path, architecture="shapes_cnn", name="evil")
    assert not target.exists()
    assert Registry().list() == []


def test_ensure_builtin_once(isolated_lab):
    reg = Registry()
    (card,) = reg.ensure_builtin()
    assert card.kind == "pretrained" and card.num_classes == 1000 and card.classes[281] == "tabby"
    mtime = (reg.root / f"{card.id}.json").stat().st_mtime_ns
    assert reg.ensure_builtin() == [card]
    assert (reg.root / f"{card.id}.json").stat().st_mtime_ns == mtime
    stored = json.loads((reg.root / f"{card.id}.json").read_text())
    assert stored["preprocessing"]["interpolation"] == "bicubic"


def test_architecture_options_go_on_the_card_and_rebuild_the_same_shape(isolated_lab):
    wide = zoo.build("shapes_cnn", width=16)
    card = _save(Registry(), wide)
    assert card.arch_options == {"width": 16}
    loaded, _ = Registry().load(card.id, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), wide.state_dict().values()))
    with pytest.raises(InvalidConfig, match="does not take the options"):
        zoo.build("cifar_vgg16", width=16)


def test_a_checkpoint_of_an_older_architecture_version_says_so(isolated_lab):
    reg = Registry()
    card = _save(reg)
    state = {k: v for k, v in zoo.build("shapes_cnn").state_dict().items() if not k.startswith("classifier")}
    state["head.weight"] = torch.zeros(5, 48)  # as if the head had been renamed since
    path = reg.root / f"{card.id}.safetensors"
    save_file(state, str(path))
    card.sha256 = sha256_file(path)
    reg._write_card(card)
    with pytest.raises(IncompatibleCheckpoint, match="older version of the 'shapes_cnn' architecture"):
        reg.load(card.id)


def test_save_child_inherits_parent_fields_and_lineage(isolated_lab):
    reg = Registry()
    parent = _save(reg, name="base")
    model = zoo.build("shapes_cnn")
    child = reg.save_child(parent, model, name="fooled", kind="fooled", metrics={"val_fsr": 1.0})
    assert child.parent == parent.id and child.kind == "fooled" and child.id != parent.id
    assert (child.architecture, list(child.classes)) == (parent.architecture, list(parent.classes))
    assert child.preprocessing == parent.preprocessing
    assert reg.card(child.id).metrics["val_fsr"] == 1.0
