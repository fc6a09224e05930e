"""The evaluation chunk: uint8 form (bit-exact logits), size bounded by ``memory_gb``, placement, device decoding."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from wiseft.datasets.base import EvalSet, Protocol
from wiseft.datasets.images import FileListDataset
from wiseft.errors import WiseftError
from wiseft.evalcache import Feeder, chunk_images_for, decode_on_device, placement, prepare, staged_chunks
from wiseft.evaluation import evaluate_settings, lerp_settings
from wiseft.interpolation import clone_state_dict
from wiseft.models import eval_transform

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


@pytest.fixture()
def jpeg_set(tmp_path):
    """``make(n)`` → a FileListDataset of ``n`` 40×52 JPEGs with open_clip's 32 px evaluation transform."""

    def make(n: int = 11) -> FileListDataset:
        rng = np.random.default_rng(0)
        files = []
        for i in range(n):
            path = tmp_path / f"{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path, quality=85)
            files.append(str(path))
        return FileListDataset(files, rng.integers(0, 5, n), eval_transform(32, MEAN, STD))

    return make


def test_chunk_size_is_whole_batches_within_the_budget():
    per_image = 3 * 224 * 224  # uint8
    assert chunk_images_for(1.0, per_image, 256) == 27 * 256  # 6912 uint8 images of 147 KiB in 1 GiB
    assert chunk_images_for(1.0, 4 * per_image, 256) == 6 * 256  # float32: 1536 images of 588 KiB
    assert chunk_images_for(1.0, 4 * per_image, 256) * 4 * per_image <= 2**30 < 7 * 256 * 4 * per_image
    assert chunk_images_for(0.001, per_image, 256) == 256  # never less than one batch
    assert chunk_images_for(1.0, per_image, 256, cap=300) == 512  # the cap, rounded up to whole batches
    assert chunk_images_for(None, per_image, 8, cap=20) == 24
    with pytest.raises(WiseftError):
        chunk_images_for(None, per_image, 8, cap=None)
    with pytest.raises(WiseftError):
        chunk_images_for(1.0, 0, 8)


def test_placement_is_device_when_it_fits_else_pinned_and_host_without_cuda():
    gib = 2**30
    assert placement(10 * gib, "cpu", None) == "host"
    assert placement(10 * gib, "cuda", 20 * gib, reserve_bytes=4 * gib) == "device"
    assert placement(17 * gib, "cuda", 20 * gib, reserve_bytes=4 * gib) == "pinned"
    assert placement(1, "cuda", None) == "pinned"  # free memory unknown: do not gamble on the device


def test_uint8_view_normalises_to_the_float_transform_bit_for_bit(jpeg_set):
    ds = jpeg_set(3)
    view, feed, collate = prepare(torch.utils.data.Subset(ds, [2, 0]), torch.device("cpu"))
    assert collate is None and feed.mean is not None
    x, y = view[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and y == int(ds.labels[2])
    assert torch.equal(feed(x[None])[0], ds[2][0])  # ToTensor + Normalize, batched on the device
    assert ds.transform.transforms[-1].__class__.__name__ == "Normalize"  # the original is untouched


def test_feeder_channels_last_and_unknown_transforms_stay_float():
    plain = torch.utils.data.TensorDataset(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    view, feed, _ = prepare(plain, torch.device("cpu"), channels_last=True)
    assert view is plain and feed.mean is None
    out = feed(plain[0][0][None])
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, plain[0][0][None])
    with pytest.raises(WiseftError, match="eval.decode"):
        prepare(plain, torch.device("cpu"), decode="gpu")


def test_staged_chunks_respect_the_memory_budget(jpeg_set):
    ds = jpeg_set(11)
    view, feed, _ = prepare(ds, torch.device("cpu"))
    loader = torch.utils.data.DataLoader(view, batch_size=2)
    per_image = 3 * 32 * 32
    chunks = list(staged_chunks(loader, feed, 2, memory_gb=4.5 * per_image / 2**30, cap=None))
    assert [sum(len(x) for x, _ in c) for c in chunks] == [4, 4, 3]  # two batches of 2 fit in 4.5 images
    assert all(x.dtype == torch.uint8 for c in chunks for x, _ in c)
    assert not feed.on_device  # no CUDA: host memory


def test_sweep_over_the_uint8_cache_equals_the_float_loop(make_classifier, jpeg_set):
    template = make_classifier(5)
    theta0 = clone_state_dict(template)
    theta1 = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in theta0.items()}
    ds = jpeg_set(11)
    eval_set = EvalSet("jpeg", ds, [str(i) for i in range(5)], Protocol(), role="reference")
    settings = lerp_settings(theta0, theta1, [0.0, 0.5, 1.0])
    result = evaluate_settings(copy.deepcopy(template), settings, [eval_set], batch_size=4, chunk_images=None,
                               memory_gb=8 * 3 * 32 * 32 / 2**30, keep_logits_for=[s.label for s in settings])
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    model = copy.deepcopy(template)
    for s in settings:
        s.apply(model)
        with torch.no_grad():
            expected = torch.cat([model(x) for x, _ in loader])
        assert torch.equal(result.sets["jpeg"].logits[s.label], expected), s.label


def test_device_decoding_matches_pil_closely_and_runs_the_engine(make_classifier, jpeg_set):
    ds = jpeg_set(6)
    view, feed, collate = prepare(ds, torch.device("cpu"), decode="device")
    assert collate is not None and feed.image_bytes == 3 * 32 * 32
    raw, labels = collate([view[i] for i in range(3)])
    staged = feed.stage(raw)
    assert staged.dtype == torch.uint8 and staged.shape == (3, 3, 32, 32) and labels.tolist() == ds.labels[:3].tolist()
    pil = torch.stack([feed(ds_uint8[None])[0] for ds_uint8 in staged])
    ref = torch.stack([ds[i][0] for i in range(3)])
    assert (pil - ref).abs().mean() < 0.15  # other resampling code, same picture (values span about ±2)
    assert isinstance(raw[0], bytes)  # bytes cross from loader workers without shared-memory descriptors
    direct = decode_on_device([torch.frombuffer(bytearray(raw[0]), dtype=torch.uint8)], 32, torch.device("cpu"))
    assert torch.equal(direct[0], staged[0])
    template = make_classifier(5)
    eval_set = EvalSet("jpeg", ds, [str(i) for i in range(5)], Protocol(), role="reference")
    theta = clone_state_dict(template)
    res = evaluate_settings(template, lerp_settings(theta, theta, [0.0]), [eval_set], batch_size=4,
                            decode="device", num_workers=1)  # files read in a worker process
    assert res.sets["jpeg"].n == 6


def test_feeder_stages_on_the_device_only_when_placed_there():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    f = Feeder(torch.device("cpu"), on_device=False)
    assert f.stage(x) is x


def test_device_decoding_falls_back_to_the_cpu_for_png_files(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 52, 3), dtype=np.uint8)).save(path)
    ds = FileListDataset([str(path)], [0], eval_transform(32, MEAN, STD))
    view, feed, collate = prepare(ds, torch.device("cpu"), decode="device")
    assert collate is None and feed.decode is None and view[0][0].dtype == torch.uint8  # PIL, uint8 chunk


def test_one_chunk_is_resident_while_the_next_is_read(make_classifier, monkeypatch):
    import weakref

    import wiseft.evalcache as E

    alive, seen = weakref.WeakSet(), []
    real = E.Feeder.stage

    def stage(self, batch):
        seen.append(len(alive))  # staged batches still alive when another one is read
        x = real(self, batch)
        alive.add(x)
        return x

    monkeypatch.setattr(E.Feeder, "stage", stage)
    model = make_classifier(5)
    theta = clone_state_dict(model)
    data = torch.utils.data.TensorDataset(torch.randn(24, 3, 32, 32), torch.zeros(24, dtype=torch.long))
    eval_set = EvalSet("t", data, [str(i) for i in range(5)], Protocol(), role="reference")
    evaluate_settings(model, lerp_settings(theta, theta, [0.0, 1.0]), [eval_set], batch_size=4, chunk_images=8)
    assert len(seen) == 6 and max(seen) == 1  # chunks of 2 batches: only this chunk's first batch is alive
