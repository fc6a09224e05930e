"""Downloads check size and checksum end to end, through the registry, from a local HTTP server.

``tests/unit/test_datasets_download.py`` covers ``fetch_url`` (md5, sha256 and size mismatches, a server that
closes early, URL schemes, archives with members that climb out). Here a registry entry is downloaded from a
server on 127.0.0.1 that serves bytes which were tampered with in transit, or cut short: nothing is extracted
and nothing is left that looks downloaded; a source without a published checksum still has its size checked
and the received file's sha256 logged, so a user can compare it by hand.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import tarfile
import threading

import pytest

from wiseft.datasets import add_dataset_config, create_eval_set, download_dataset
from wiseft.datasets.fixtures import make_image_folder
from wiseft.errors import DatasetError


def _archive(tmp_path) -> bytes:
    make_image_folder(tmp_path / "build" / "myset", ["a", "b"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(tmp_path / "build" / "myset", arcname="myset")
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    good = _archive(tmp_path)
    tampered = bytearray(good)
    tampered[len(tampered) // 2] ^= 0xFF
    bodies = {"/good.tar.gz": (good, len(good)), "/tampered.tar.gz": (bytes(tampered), len(good)),
              "/short.tar.gz": (good[: len(good) // 2], len(good))}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body, length = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.md5(good).hexdigest(), good
    httpd.shutdown()
    httpd.server_close()


def _register(tmp_path, name: str, url: str, md5: str | None) -> None:
    checksum = f", md5: {md5}" if md5 else ""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"{name}:\n  classnames: [a, b]\n  splits: {{test: {{path: myset}}}}\n"
                    f"  download: {{files: [{{url: '{url}'{checksum}, extract: true}}]}}\n")
    add_dataset_config(path)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    from wiseft.datasets import fetch

    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)


def _nothing_kept(root, partial_ok: bool = False) -> None:
    """Nothing extracted; at most the ``.part`` file a rerun resumes from (never for corrupt bytes)."""
    assert not (root / "myset").exists()
    leftovers = [p for p in root.rglob("*") if p.is_file() and not (partial_ok and p.name.endswith(".part"))]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("path, match", [("/tampered.tar.gz", "checksum mismatch.*md5"),
                                         ("/short.tar.gz", "truncated|failed after")])
def test_a_damaged_transfer_is_refused_before_extraction(tmp_path, server, clean_registry, path, match):
    url, md5, _ = server
    _register(tmp_path, "myset", url + path, md5)
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match=match):
        download_dataset("myset", root=root)
    _nothing_kept(root, partial_ok=path == "/short.tar.gz")


def test_the_published_checksum_admits_the_right_bytes(tmp_path, server, clean_registry):
    url, md5, _ = server
    _register(tmp_path, "myset", url + "/good.tar.gz", md5)
    root = tmp_path / "data"
    download_dataset("myset", root=root)
    assert len(create_eval_set("myset", root=root)) == 2


def test_without_a_published_checksum_the_size_is_checked_and_the_hash_logged(tmp_path, server, clean_registry,
                                                                            caplog):
    url, _, good = server
    root = tmp_path / "data"
    _register(tmp_path, "short", url + "/short.tar.gz", None)
    with pytest.raises(DatasetError, match="truncated|failed after"):
        download_dataset("short", root=root)
    _nothing_kept(root, partial_ok=True)
    _register(tmp_path, "myset", url + "/good.tar.gz", None)
    with caplog.at_level(logging.INFO, logger="wiseft.datasets.fetch"):
        download_dataset("myset", root=root)
    assert hashlib.sha256(good).hexdigest() in caplog.text and "no published checksum" in caplog.text
