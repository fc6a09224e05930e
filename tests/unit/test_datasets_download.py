"""Downloads against file:// URLs and a local HTTP server (never the network): checksums, sizes, truncation,
archives that try to escape, manual instructions."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

os.environ.setdefault("WISEFT_PROGRESS", "0")

from wiseft.cli import main  # noqa: E402
from wiseft.datasets import add_dataset_config, create_eval_set  # noqa: E402
from wiseft.datasets import registry  # noqa: E402
from wiseft.datasets.download import (  # noqa: E402
    ManualDownloadRequired,
    download_dataset,
    download_instructions,
    extract_archive,
    fetch_url,
)
from wiseft.datasets.fixtures import make_image_folder  # noqa: E402
from wiseft.errors import DatasetError  # noqa: E402

PAYLOAD = b"wiseft test payload\n" * 100


@pytest.fixture
def clean_registry():
    yield
    registry._reset_registry()


@pytest.fixture
def payload_file(tmp_path) -> Path:
    path = tmp_path / "src" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def test_fetch_with_matching_checksums(payload_file, tmp_path):
    dest = tmp_path / "out" / "payload.bin"
    fetch_url(payload_file.as_uri(), dest, md5=hashlib.md5(PAYLOAD).hexdigest(),
              sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("kwargs,match", [
    ({"md5": "0" * 32}, "checksum mismatch.*md5"),
    ({"sha256": "f" * 64}, "checksum mismatch.*sha256"),
    ({"size": len(PAYLOAD) + 1}, "published size"),
])
def test_mismatch_leaves_nothing_behind(payload_file, tmp_path, kwargs, match):
    dest = tmp_path / "out" / "payload.bin"
    with pytest.raises(DatasetError, match=match) as e:
        fetch_url(payload_file.as_uri(), dest, **kwargs)
    assert payload_file.as_uri() in str(e.value)
    assert not dest.exists() and not [p for p in dest.parent.iterdir()]


def test_refuses_other_url_schemes(tmp_path):
    with pytest.raises(DatasetError, match="only https, http, file"):
        fetch_url("ftp://example.org/x.tar", tmp_path / "x.tar")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        if self.path == "/truncated":
            self.send_header("Content-Length", str(len(PAYLOAD) * 2))  # promises more than it sends
        else:
            self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_local_http_server_download_and_truncation(server, tmp_path):
    dest = tmp_path / "ok.bin"
    fetch_url(f"{server}/ok", dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(DatasetError, match="truncated|failed after"):
        fetch_url(f"{server}/truncated", tmp_path / "cut.bin", timeout=10, retries=1, backoff=0)
    assert not (tmp_path / "cut.bin").exists()  # only the resumable cut.bin.part is left


def _tar_of(tmp_path: Path, members: dict[str, bytes], name: str = "set.tar.gz") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for arcname, data in members.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_archives_cannot_write_outside_the_root(tmp_path):
    evil = _tar_of(tmp_path, {"../../escaped.txt": b"x"}, "evil.tar.gz")
    with pytest.raises(DatasetError, match="unsafe member"):
        extract_archive(evil, tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    link = tmp_path / "src" / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("sneaky")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DatasetError, match="unsafe member"):
        extract_archive(link, tmp_path / "root")


def test_download_dataset_from_registry_entry(tmp_path, clean_registry):
    make_image_folder(tmp_path / "build" / "myset", ["a", "b"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(tmp_path / "build" / "myset", arcname="myset")
    archive = tmp_path / "src" / "myset.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    (tmp_path / "myset.yaml").write_text(
        f"myset:\n  classnames: [a, b]\n  splits: {{test: {{path: myset, count: 2}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', md5: {md5}, extract: true}}]}}\n"
        f"myset-bad:\n  classnames: [a, b]\n  splits: {{test: {{path: myset}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', md5: '{'0' * 32}', extract: true}}]}}\n"
        f"myset-escape:\n  classnames: [a, b]\n  splits: {{test: {{path: myset}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', dest: ../../outside.bin}}]}}\n")
    add_dataset_config(tmp_path / "myset.yaml")
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_dataset("myset-bad", root=root)
    assert not (root / "myset").exists()
    with pytest.raises(DatasetError, match="escapes"):
        download_dataset("myset-escape", root=root)
    assert main(["data", "download", "myset", "--root", str(root)]) == 0
    assert len(create_eval_set("myset", root=root)) == 2
    assert not list((root / ".wiseft-downloads").glob("*.tar.gz"))  # archive removed after extraction
    assert download_dataset("myset", root=root) == [root]  # already there: nothing fetched again


@pytest.mark.parametrize("name,needle", [("imagenet", "image-net.org"), ("objectnet", "objectnet.dev"),
                                         ("imagenet-sketch", "wanghaohan/imagenetsketch"),
                                         ("stanford-cars", "cars_test_annos_withlabels.mat"),
                                         ("imagenet-sub-a", "ILSVRC2012_img_val.tar")])
def test_manual_datasets_say_exactly_what_to_do(name, needle, tmp_path, capsys):
    text = download_instructions(name, root=tmp_path)
    assert needle in text and str(tmp_path) in text
    with pytest.raises(ManualDownloadRequired):
        download_dataset(name, root=tmp_path)
    assert main(["data", "download", name, "--root", str(tmp_path)]) == 1
    assert needle in capsys.readouterr().out


def test_automatic_sources_publish_urls():
    from wiseft.datasets import get_dataset_cfg, list_datasets

    for name in list_datasets():
        spec = get_dataset_cfg(name).get("download") or {}
        for item in spec.get("files", []):
            assert item["url"].startswith(("https://", "http://")), name
    assert download_instructions("cifar10") is None
