"""Bundles are data, not code: every tampered bundle is refused, by the loader and both CLIs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from test_entry_points import run_cli

from hybridrec.bundle import MANIFEST, BundleError, _manifest_checksum, load_bundle


def _resign(folder, name=None):
    """What a tamperer would do: the file's checksum and the manifest's own recomputed."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if name:
        manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    manifest["checksum"] = _manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _swapped_target(folder, marker):
    config = (folder / "config.yaml").read_text()
    swapped = config.replace(
        "_target_: hybridrec.models.hybrid.HybridRecModel",
        f"_target_: pathlib.Path.touch\n    _args_: ['{marker}']",
        1,
    )
    assert swapped != config
    (folder / "config.yaml").write_text(swapped)
    _resign(folder, "config.yaml")


def _emptied_file_list(folder, marker):
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"] = {}
    manifest["checksum"] = _manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _truncated_weights(folder, marker):
    data = (folder / "weights.pt").read_bytes()
    (folder / "weights.pt").write_bytes(data[: len(data) // 2])


def _flipped_weights(folder, marker):
    data = bytearray((folder / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "weights.pt").write_bytes(bytes(data))


def _missing_manifest(folder, marker):
    (folder / MANIFEST).unlink()


def _edited_manifest(folder, marker):
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["n_items"] += 1
    (folder / MANIFEST).write_text(json.dumps(manifest))


TAMPERED = {
    "swapped target": (
        _swapped_target,
        "names pathlib.Path.touch at model.net, which a bundle may not build",
    ),
    "emptied file list": (_emptied_file_list, "is incomplete: its manifest does not list"),
    "truncated weights": (_truncated_weights, "is corrupt: weights.pt does not match its checksum"),
    "flipped weights": (_flipped_weights, "is corrupt: weights.pt does not match its checksum"),
    "missing manifest": (_missing_manifest, "no model bundle at"),
    "edited manifest": (_edited_manifest, "is corrupt: its manifest does not match its checksum"),
}


@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_a_tampered_bundle_is_refused_and_runs_nothing(trained_bundle, tmp_path, name):
    tamper, message = TAMPERED[name]
    folder, marker = tmp_path / "bundle", tmp_path / "ran"
    shutil.copytree(trained_bundle, folder)
    tamper(folder, marker)
    with pytest.raises(BundleError, match=message.split(":")[0]):
        load_bundle(folder)
    predicted = run_cli("predict.py", f"bundle={folder}", "user_id=1")
    assert predicted.returncode == 1 and message.split(":")[-1].strip() in predicted.stderr
    assert len(predicted.stderr.strip().splitlines()) == 1
    served = subprocess.run(
        [sys.executable, str(REPO_ROOT / "serve.py"), f"bundle={folder}", "port=1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert served.returncode == 1 and len(served.stderr.strip().splitlines()) == 1, served.stderr[-1500:]
    assert not marker.exists()  # nothing the bundle named was called
