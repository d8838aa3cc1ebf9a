"""unity_bridge/unity: the C# protocol logic compiles with mono's mcs and passes its own tests
(golden vectors, headset state machine, network thread over NetMQ stand-ins).

Needs the Debian packages ``mono-mcs`` (compiler; pulls in ``mono-runtime`` to run the tests).
Skipped with a reason when mcs is missing on a developer machine; a failure when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "unity_bridge" / "unity"
VECTORS = PACKAGE.parent / "vectors.json"
APT = "apt-get install -y --no-install-recommends mono-mcs"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing on CI: the CI script must run `{APT}`")
        pytest.skip(f"{name} not installed (install with: {APT})")
    return path


def _sources() -> list[str]:
    return sorted(str(p) for d in ("Runtime", "Samples~", "Tests~") for p in (PACKAGE / d).rglob("*.cs"))


def test_csharp_compiles_and_its_tests_pass(tmp_path: Path) -> None:
    mcs, mono = _tool("mcs"), _tool("mono")
    exe = tmp_path / "bridge-tests.exe"
    build = subprocess.run(
        [mcs, "-nologo", "-warnaserror+", "-out:" + str(exe), "-r:System.Core.dll", *_sources()],
        capture_output=True, text=True, timeout=240,
    )
    assert build.returncode == 0, f"mcs failed:\n{build.stdout}\n{build.stderr}"
    result = subprocess.run([mono, str(exe), str(VECTORS)], capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, "C# tests failed:\n" + "\n".join(l for l in lines if not l.startswith("PASS")) + result.stderr
    last = lines[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 0 failed" and passed >= 20, last


def test_the_runtime_protocol_code_does_not_use_unity_engine() -> None:
    for p in (PACKAGE / "Runtime" / "Protocol").glob("*.cs"):
        text = p.read_text(encoding="utf-8")
        assert "using UnityEngine" not in text and "using NetMQ" not in text, p.name


def test_package_manifest_is_a_upm_package() -> None:
    manifest = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert manifest["name"] == manifest["name"].lower() and manifest["name"].count(".") >= 2
    assert manifest["unity"] and manifest["version"]
    for sample in manifest["samples"]:
        assert (PACKAGE / sample["path"]).is_dir(), sample["path"]
    asmdef = json.loads((PACKAGE / "Runtime" / "ExposureCtrl.Bridge.asmdef").read_text(encoding="utf-8"))
    assert "NetMQ.dll" in asmdef["precompiledReferences"]
