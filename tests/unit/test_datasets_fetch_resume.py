"""Downloads that survive: a loopback HTTP server drops the connection half-way, and the download resumes with
a ``Range`` request (or starts over when the server ignores ranges), then is size- and checksum-verified
before anything is extracted."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from wiseft.datasets import add_dataset_config, create_eval_set, download_dataset, registry
from wiseft.datasets import fetch as fetch_mod
from wiseft.datasets.fetch import fetch_url
from wiseft.datasets.fixtures import make_image_folder
from wiseft.errors import DatasetError


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(fetch_mod, "BACKOFF_S", 0.0)


@pytest.fixture
def clean_registry():
    yield
    registry._reset_registry()


def _archive(tmp_path) -> bytes:
    make_image_folder(tmp_path / "build" / "myset", ["a", "b"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(tmp_path / "build" / "myset", arcname="myset")
    return buf.getvalue() + bytes(range(256)) * 40  # padding after the tar end: the body is long enough to cut


class FlakyServer:
    """Serves one body; the first ``drops`` answers stop half-way. ``ranges`` honours ``Range`` (206) or not
    (200, the whole body); ``corrupt_tail`` flips a byte in what a ranged answer sends."""

    def __init__(self, body: bytes, drops: int = 1, ranges: bool = True, corrupt_tail: bool = False):
        self.body, self.drops, self.ranges, self.corrupt_tail = body, drops, ranges, corrupt_tail
        self.requests: list[tuple[str | None, int]] = []  # (Range header, status sent)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/set.tar.gz":
                    server.requests.append((self.headers.get("Range"), 404))  # before the client can see it
                    self.send_error(404)
                    return
                body, start = server.body, 0
                asked = self.headers.get("Range")
                if asked and server.ranges:
                    start = int(asked.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        server.requests.append((asked, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                    if server.corrupt_tail:
                        body = bytes([body[0] ^ 0xFF]) + body[1:]
                else:
                    self.send_response(200)
                server.requests.append((asked, 206 if start else 200))  # recorded before the body is sent
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drops > 0:
                    server.drops -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/set.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*args, **kwargs) -> FlakyServer:
        servers.append(FlakyServer(*args, **kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_a_dropped_connection_resumes_with_a_range_request_and_verifies(tmp_path, serve):
    body = _archive(tmp_path)
    server = serve(body, drops=1)
    dest = fetch_url(server.url, tmp_path / "out" / "set.tar.gz", sha256=hashlib.sha256(body).hexdigest(),
                     size=len(body), timeout=10)
    assert dest.read_bytes() == body
    assert server.requests == [(None, 200), (f"bytes={len(body) // 2}-", 206)]
    assert not (tmp_path / "out" / "set.tar.gz.part").exists()


def test_a_server_that_ignores_ranges_restarts_cleanly(tmp_path, serve):
    body = _archive(tmp_path)
    server = serve(body, drops=1, ranges=False)
    dest = fetch_url(server.url, tmp_path / "set.tar.gz", md5=hashlib.md5(body).hexdigest(), timeout=10)
    assert dest.read_bytes() == body  # not the first half twice
    assert server.requests == [(None, 200), (f"bytes={len(body) // 2}-", 200)]


def test_a_rerun_resumes_the_partial_file_kept_by_a_failed_run(tmp_path, serve):
    body = _archive(tmp_path)
    server = serve(body, drops=3)
    dest = tmp_path / "set.tar.gz"
    with pytest.raises(DatasetError, match="failed after 2 attempt.*run the command again to resume") as e:
        fetch_url(server.url, dest, md5=hashlib.md5(body).hexdigest(), retries=1, timeout=10)
    assert "\n" not in str(e.value)
    part = tmp_path / "set.tar.gz.part"
    assert not dest.exists() and 0 < part.stat().st_size < len(body)
    fetch_url(server.url, dest, md5=hashlib.md5(body).hexdigest(), timeout=10)
    assert dest.read_bytes() == body and not part.exists()
    assert all(r[0] is not None for r in server.requests[1:])  # every later request asked for the rest


def test_a_checksum_mismatch_is_one_line_and_nothing_is_extracted(tmp_path, serve, clean_registry):
    body = _archive(tmp_path)
    server = serve(body, drops=1, corrupt_tail=True)
    (tmp_path / "myset.yaml").write_text(
        f"myset:\n  classnames: [a, b]\n  splits: {{test: {{path: myset}}}}\n"
        f"  download: {{files: [{{url: '{server.url}', md5: {hashlib.md5(body).hexdigest()}, extract: true}}]}}\n")
    add_dataset_config(tmp_path / "myset.yaml")
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="checksum mismatch, md5") as e:
        download_dataset("myset", root=root)
    assert "\n" not in str(e.value) and server.url in str(e.value)
    assert server.requests[1][1] == 206  # the corrupt bytes came from the resumed part
    assert not (root / "myset").exists()
    assert [p for p in root.rglob("*") if p.is_file()] == []  # the partial archive is gone too


def test_a_resumed_registry_download_extracts_and_loads(tmp_path, serve, clean_registry):
    body = _archive(tmp_path)
    server = serve(body, drops=2)
    (tmp_path / "myset.yaml").write_text(
        f"myset:\n  classnames: [a, b]\n  splits: {{test: {{path: myset}}}}\n"
        f"  download: {{files: [{{url: '{server.url}', sha256: {hashlib.sha256(body).hexdigest()}, "
        f"extract: true}}]}}\n")
    add_dataset_config(tmp_path / "myset.yaml")
    download_dataset("myset", root=tmp_path / "data")
    assert len(create_eval_set("myset", root=tmp_path / "data")) == 2
    assert [r[1] for r in server.requests] == [200, 206, 206]


def test_a_complete_partial_file_is_verified_without_downloading_again(tmp_path, serve):
    body = _archive(tmp_path)
    server = serve(body, drops=0)
    (tmp_path / "set.tar.gz.part").write_bytes(body)  # a run that died between the last byte and the rename
    dest = fetch_url(server.url, tmp_path / "set.tar.gz", md5=hashlib.md5(body).hexdigest(), timeout=10)
    assert dest.read_bytes() == body and server.requests == [(f"bytes={len(body)}-", 416)]


def test_a_missing_file_is_not_retried(tmp_path, serve):
    server = serve(b"x" * 100)
    with pytest.raises(DatasetError, match="HTTP 404"):
        fetch_url(server.url.replace("set.tar.gz", "nope.tar.gz"), tmp_path / "nope.tar.gz", timeout=10)
    assert len(server.requests) == 1
