"""The command line, as a person uses it: `python -m backend explain` and `python -m backend models`.

The happy paths run in-process through `backend.__main__.main` (the same parser and dispatch as the
console); one real subprocess checks the exit status and that a bad argument prints a message, not a
traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from backend.__main__ import main
from backend.models import zoo

ROOT = Path(__file__).resolve().parents[2]
CHELSEA = ROOT / "assets" / "samples" / "chelsea.png"


def test_explain_prints_top5_and_writes_one_overlay_per_method(isolated_lab, capsys):
    out = isolated_lab / "maps"
    rc = main(["explain", "--image", str(CHELSEA), "--methods", "gradient,gradcam,lrp", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    ranks = [line for line in printed.splitlines() if line.strip()[:2] in {f"{i}." for i in range(1, 6)}]
    assert len(ranks) == 5
    assert "cat" in ranks[0]  # chelsea is a tabby: EfficientNet-Lite0 says tiger cat
    probs = [float(line.split()[-1]) for line in ranks]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["chelsea_gradcam.png", "chelsea_gradient.png", "chelsea_lrp.png"]
    grad = np.asarray(Image.open(out / "chelsea_gradient.png"))
    cam = np.asarray(Image.open(out / "chelsea_gradcam.png"))
    assert grad.shape == cam.shape == (224, 224, 3)  # the model's view: Lite0 preprocessing, 224 px
    assert not np.array_equal(grad, cam)  # each method drew its own map


def test_explain_refuses_unknown_methods_and_targets(isolated_lab, capsys):
    assert main(["explain", "--image", str(CHELSEA), "--methods", "gradient,magic"]) == 2
    assert "Unknown method(s) magic; known:" in capsys.readouterr().err
    assert main(["explain", "--image", str(CHELSEA), "--target", "1000"]) == 2
    assert "--target must be a class index in [0, 999]" in capsys.readouterr().err


def test_explain_refuses_a_non_image_and_a_missing_checkpoint(isolated_lab, capsys):
    junk = isolated_lab / "notes.png"
    junk.write_bytes(b"this is not a png at all")
    assert main(["explain", "--image", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "notes.png" in err
    assert main(["explain", "--image", str(CHELSEA), "--model", "no-such-checkpoint"]) == 2
    err = capsys.readouterr().err
    assert "No checkpoint 'no-such-checkpoint'" in err and "efficientnet_lite0" in err  # what to name instead


def test_models_upload_then_list_then_explain_with_it(isolated_lab, capsys):
    torch.manual_seed(0)
    weights = isolated_lab / "mine.safetensors"
    save_file(zoo.build("shapes_cnn").state_dict(), str(weights))
    assert main(["models", "upload", str(weights), "--arch", "shapes_cnn", "--name", "my shapes"]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    line = next(row for row in listing.splitlines() if "my shapes" in row)
    checkpoint_id = next(word for word in line.split() if word.startswith("my-shapes-"))
    out = isolated_lab / "maps"
    assert (
        main(
            [
                "explain",
                "--model",
                checkpoint_id,
                "--image",
                str(CHELSEA),
                "--methods",
                "gradcam",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(out / "chelsea_gradcam.png")).shape == (64, 64, 3)  # shapes preprocessing


def test_models_upload_of_a_pickle_with_code_is_refused(isolated_lab, capsys):
    evil = isolated_lab / "evil.pt"
    torch.save({"state_dict": zoo.build("shapes_cnn").state_dict(), "extra": _Marker()}, evil)
    assert main(["models", "upload", str(evil), "--arch", "shapes_cnn", "--name", "evil"]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["models", "list"]) == 0
    assert "evil" not in capsys.readouterr().out


class _Marker:
    """An object that only a full (code-running) unpickle can rebuild."""


@pytest.mark.timeout(120)
def test_console_exit_status_and_message_without_traceback(isolated_lab):
    done = subprocess.run(
        [sys.executable, "-m", "backend", "explain", "--image", str(isolated_lab / "missing.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "missing.png" in done.stderr
    assert "Traceback" not in done.stderr
