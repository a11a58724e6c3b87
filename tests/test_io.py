"""Crash-safe writing: file modes, replacement that keeps the old folder whole, and what a writer
killed with SIGKILL at its worst moment leaves behind (nothing, once the next one starts)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from hybridrec.io import remove_stale, replace_folder, staging_folder, write_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def kill_at_pause(code: str, tmp_path: Path, env: dict | None = None, timeout_s: float = 120) -> None:
    """Run ``code`` in a new Python process; it calls ``pause()`` (defined for it) at the moment to
    kill it: the process is then killed with SIGKILL, as by the OOM killer or a scheduler."""
    ready = tmp_path / "paused"
    prelude = textwrap.dedent(
        f"""
        import pathlib, time
        def pause():
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=REPO_ROOT,
        # this checkout's code, whichever one the environment has installed
        env={
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT / "tests")]),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if process.poll() is not None:
            pytest.fail(f"the process ended before its pause: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the process never reached its pause")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_files_and_folders_get_the_modes_the_umask_allows(tmp_path):
    old = os.umask(0o002)
    try:
        written = write_text(tmp_path / "a.txt", "x")
        staged = staging_folder(tmp_path / "bundle")
    finally:
        os.umask(old)
    assert _mode(written) == 0o664 and _mode(staged) == 0o775  # not mkstemp's 0600 nor mkdtemp's 0700


def test_a_replaced_folder_stays_whole_until_the_new_one_is_in(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "weights").write_text("old")
    staged = staging_folder(target)
    (staged / "weights").write_text("new")
    assert (target / "weights").read_text() == "old"
    replace_folder(staged, target)
    assert (target / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_a_kill_between_the_two_renames_is_undone_at_the_next_start(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "weights").write_text("old")
    kill_at_pause(
        f"""
        import os
        from pathlib import Path
        import hybridrec.io as io
        rename = os.rename
        def rename_then_pause(source, destination):
            rename(source, destination)
            if ".aside-" in str(destination):
                pause()
        io.os.rename = rename_then_pause
        target = Path({str(target)!r})
        staged = io.staging_folder(target)
        (staged / "weights").write_text("new")
        io.replace_folder(staged, target)
        """,
        tmp_path,
    )
    assert not target.exists()  # the old one is aside, the new one still staged
    assert len(remove_stale(tmp_path, "bundle")) == 1  # the staged one goes, the old one is back
    assert (target / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "paused"]


def test_a_killed_bundle_save_leaves_the_old_bundle_whole(trained_bundle, tmp_path):
    from hybridrec.bundle import find_bundle, load_bundle

    run = tmp_path / "run"
    shutil.copytree(trained_bundle, run / "bundle")
    kill_at_pause(
        f"""
        import numpy as np
        from pathlib import Path
        from hybridrec.bundle import load_bundle, save_bundle
        b = load_bundle(Path({str(run / "bundle")!r}))
        savez = np.savez
        def savez_then_pause(path, **arrays):
            savez(path, **arrays)
            if str(path).endswith("context.npz"):
                pause()
        np.savez = savez_then_pause
        save_bundle(Path({str(run / "bundle")!r}), b.config, b.model, b.context, b.seen, b.items, b.users)
        """,
        tmp_path,
    )
    assert find_bundle(None, tmp_path) == run / "bundle"
    old = load_bundle(run / "bundle")  # verified: every checksum holds
    assert old.bundle_id == load_bundle(trained_bundle).bundle_id
    leftovers = [p.name for p in run.iterdir() if p.name != "bundle"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".bundle.staged-")
    remove_stale(run, "bundle")  # what the next save does first
    assert [p.name for p in run.iterdir()] == ["bundle"]


def test_a_killed_download_leaves_nothing_and_the_next_one_completes(tmp_path):
    """The server sends half the archive and stalls; the download is killed there (the server says
    when: it makes the file that ``kill_at_pause`` waits for)."""
    import http.server
    import threading

    import synthetic

    from hybridrec.constants import ML100K_REQUIRED_FILES
    from hybridrec.data.download import ensure_dataset

    payload = synthetic.make_archive()
    stall = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not stall.is_set():
                stall.set()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                time.sleep(0.5)  # into the client's socket buffer
                (tmp_path / "paused").touch()
                time.sleep(30)
                return
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
    import hashlib

    md5 = hashlib.md5(payload).hexdigest()
    data = tmp_path / "data"
    try:
        kill_at_pause(
            f"""
            from pathlib import Path
            import hybridrec.data.download as download
            download.ensure_dataset(
                Path({str(data)!r}), "ml-100k", {url!r}, {md5!r}, {tuple(ML100K_REQUIRED_FILES)!r}, progress=False
            )
            """,
            tmp_path,
        )
        assert not (data / "ml-100k").exists()
        assert [p.name[:16] for p in data.iterdir()] == [".ml-100k.staged-"]
        done = ensure_dataset(data, "ml-100k", url, md5, ML100K_REQUIRED_FILES, progress=False, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert done == data / "ml-100k" and [p.name for p in data.iterdir()] == ["ml-100k"]


def test_a_killed_embedding_run_keeps_what_it_finished_and_resumes(tmp_path):
    """Killed in the middle of its third chunk: the two written chunks (the four shortest texts: they
    go first) are kept, the cache opens, and the next run embeds only the rest."""
    cache = tmp_path / "cache.sqlite3"
    texts = [f"profile {'x' * (k * 7 % 10)} {k}" for k in range(10)]  # lengths in a shuffled order
    kill_at_pause(
        f"""
        from hybridrec.embedders.cache import CachedEmbedder
        from hybridrec.embedders.hashing import HashingEmbedder
        class Slow(HashingEmbedder):
            calls = 0
            def _embed(self, texts):
                Slow.calls += 1
                if Slow.calls == 3:
                    pause()
                return super()._embed(texts)
        CachedEmbedder(Slow(dim=8), {str(cache)!r}, chunk_size=2, progress=False).embed({texts!r})
        """,
        tmp_path,
    )
    from test_embedders import CountingEmbedder

    from hybridrec.embedders.cache import CachedEmbedder
    from hybridrec.embedders.hashing import HashingEmbedder

    class Counting(CountingEmbedder):
        def __init__(self):
            super().__init__()
            self.inner, self.name, self.dim = HashingEmbedder(dim=8), HashingEmbedder(dim=8).name, 8

    inner = Counting()
    cached = CachedEmbedder(inner, cache, chunk_size=2, progress=False)
    assert cached.store.count(inner.name) == 4
    vectors = cached.embed(texts)
    assert inner.seen == sorted(texts, key=len)[4:]
    assert np.allclose(vectors, HashingEmbedder(dim=8).embed(texts))
