"""The archive download: streamed from a local HTTP server, checksummed, extracted atomically."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest
import synthetic

from hybridrec.constants import ML100K_REQUIRED_FILES
from hybridrec.data.download import DataDownloadError, ensure_dataset


@pytest.fixture(scope="module")
def archive_server():
    """Serves ``/ok.zip`` (the synthetic archive), ``/corrupt.zip`` and ``/truncated.zip``; 404 elsewhere."""
    payload = synthetic.make_archive()
    routes = {"/ok.zip": payload, "/corrupt.zip": payload[:-40] + b"x" * 40, "/notzip.zip": b"not a zip"}
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/truncated.zip":
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, hashlib.md5(payload).hexdigest(), hits
    server.shutdown()
    server.server_close()


def _fetch(tmp_path, url, md5, **kwargs):
    return ensure_dataset(
        tmp_path, "ml-100k", url, md5, ML100K_REQUIRED_FILES, progress=False, timeout=5, **kwargs
    )


def test_download_verifies_and_extracts(tmp_path, archive_server):
    base, md5, _ = archive_server
    folder = _fetch(tmp_path, f"{base}/ok.zip", md5)
    assert folder == tmp_path / "ml-100k"
    assert all((folder / name).is_file() for name in ML100K_REQUIRED_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]  # no temporary leftovers


def test_existing_folder_is_used_without_network(tmp_path, archive_server):
    base, md5, hits = archive_server
    _fetch(tmp_path, f"{base}/ok.zip", md5)
    before = len(hits)
    _fetch(tmp_path, f"{base}/ok.zip", md5)
    assert len(hits) == before


@pytest.mark.parametrize("path", ["/corrupt.zip", "/truncated.zip", "/missing.zip", "/notzip.zip"])
def test_failed_download_leaves_nothing_behind(tmp_path, archive_server, path):
    base, md5, _ = archive_server
    if path == "/notzip.zip":
        md5 = hashlib.md5(b"not a zip").hexdigest()  # passes the checksum, fails extraction
    with pytest.raises(DataDownloadError) as info:
        _fetch(tmp_path, f"{base}{path}", md5)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_names_both_digests(tmp_path, archive_server):
    base, _, _ = archive_server
    with pytest.raises(DataDownloadError, match="checksum mismatch.*expected md5 0{32}"):
        _fetch(tmp_path, f"{base}/ok.zip", "0" * 32)


def test_offline_fails_with_one_line_and_a_hint(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataDownloadError, match="could not download.*HYBRIDREC_DATA_DIR"):
        _fetch(tmp_path, f"http://127.0.0.1:{port}/ml-100k.zip", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_download_off_fails_clearly(tmp_path):
    with pytest.raises(DataDownloadError, match="download is off"):
        _fetch(tmp_path, "http://127.0.0.1:9/x.zip", "0" * 32, download=False)


def test_incomplete_folder_is_reported(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t1\n")
    with pytest.raises(DataDownloadError, match="lacks u.user"):
        _fetch(tmp_path, "http://127.0.0.1:9/x.zip", "0" * 32)
