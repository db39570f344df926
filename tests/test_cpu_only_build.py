"""The explicit CPU-only switch: AUPERF_WITH_CUDA=OFF builds a core whose CUDA entry points raise.

Builds the extension with CMake in a temporary folder (about half a minute on two cores) and
imports it in a fresh interpreter beside a copy of the Python package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cpu_only_package(tmp_path_factory) -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    import pybind11

    build = tmp_path_factory.mktemp("build-cpu")
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-G",
            "Ninja" if shutil.which("ninja") else "Unix Makefiles",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DAUPERF_WITH_CUDA=OFF",
            "-DSKBUILD_PROJECT_VERSION=0.0.0",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    pkg = tmp_path_factory.mktemp("pkg")
    shutil.copytree(
        ROOT / "auperf", pkg / "auperf", ignore=shutil.ignore_patterns("_core*", "__pycache__")
    )
    (so,) = build.glob("_core*.so")
    shutil.copy(so, pkg / "auperf" / so.name)
    return pkg


def _run(pkg: Path, code: str) -> subprocess.CompletedProcess:
    # -S skips site-packages' .pth hooks (the editable install's import redirect), so the copy
    # in `pkg` is the auperf that gets imported; site-packages stays reachable for numpy.
    path = f"{pkg}:{sysconfig.get_paths()['purelib']}:{sysconfig.get_paths()['platlib']}"
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        cwd=pkg,
    )


def test_cpu_only_build_imports_and_reports(cpu_only_package):
    out = _run(cpu_only_package, "import auperf, json; print(json.dumps(auperf.build_info()))")
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout)
    assert info["cuda_compiled"] is False
    assert info["cuda_device_count"] == 0
    assert info["cuda_archs"] == [] and info["cuda_runtime_version"] is None
    assert (
        str(cpu_only_package)
        in _run(cpu_only_package, "import auperf; print(auperf.__file__)").stdout
    )


def test_cpu_only_build_cuda_entry_raises_typed_error(cpu_only_package):
    code = (
        "import auperf\n"
        "from auperf import _core, errors\n"
        "try:\n"
        "    _core.fuse_cuda(0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0)\n"
        "except errors.CudaUnavailableError as e:\n"
        "    print('typed:', e)\n"
    )
    out = _run(cpu_only_package, code)
    assert out.returncode == 0, out.stderr
    assert "typed: fuse_cuda: auperf was built without CUDA" in out.stdout


def test_cpu_only_build_runs_cpu_kernels(cpu_only_package):
    code = (
        "import numpy as np\n"
        "from auperf.ops import fuse_views, warp_faces\n"
        "p, a = fuse_views(np.zeros((2, 2, 3), np.float32))\n"
        "m = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])\n"
        "w = warp_faces(np.full((1, 4, 4, 3), 255, np.uint8), m, size=2)\n"
        "print(float(p.sum()), bool(a.all()), float(w.min()))\n"
    )
    out = _run(cpu_only_package, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3.0", "True", "1.0"]
