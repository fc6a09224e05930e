"""Fine-tuning on a CUDA GPU: every precision, gradient checkpointing, crash and resume, features, throughput.

Skipped without CUDA. Run with ``-s`` to see the measured differences and throughput.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
import torch

from wiseft.finetune import finetune_e2e
from wiseft.finetune.augment import Preprocess, eval_transform
from wiseft.finetune.features import cached_features, dataset_fingerprint
from wiseft.finetune.search import search_linear
from wiseft.finetune.state import list_states, load_train_state
from wiseft.profile import LCCfg
from tests.helpers import finetune_worker as worker

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]



def _weights(model):
    return {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}


def _max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _run(out, model=None, train_set=None, resume=False, **cfg):
    return finetune_e2e(model or worker.TinyClipClassifier(dropout=0.1),
                        train_set or worker.tiny_train_set(image_size=32),
                        worker.make_cfg({"micro_batch_size": 4, **cfg}), out, device="cuda", seed=0, resume=resume)


@pytest.mark.parametrize("precision", ["fp32", "amp_bf16", "amp_fp16"])
def test_every_precision_trains_with_gradient_checkpointing(tmp_path, precision):
    before = _weights(worker.TinyClipClassifier(dropout=0.1))
    result = _run(tmp_path, precision=precision, grad_checkpointing=True)
    assert all(p.device.type == "cuda" for p in result.model.parameters())
    after = _weights(result.model)
    assert all(torch.isfinite(v).all() for v in after.values())
    assert _max_diff(before, after) > 1e-4
    state = load_train_state(result.state_dir)
    assert (state.trainer["scaler"] is not None) == (precision == "amp_fp16")
    assert any(k.startswith("torch_cuda.") for k in state.rng[0])  # the GPU's random state is saved too
    print(f"\n{precision}: epoch losses {[round(h['loss'], 4) for h in result.history]}")


def test_same_seed_repeats_on_the_gpu(tmp_path):
    a, b = _weights(_run(tmp_path / "a").model), _weights(_run(tmp_path / "b").model)
    diff = _max_diff(a, b)
    print(f"\nsame seed twice on CUDA: max |Δw| = {diff:.3g} (bitwise: {diff == 0})")
    assert diff < 1e-5


def test_crash_and_resume_on_the_gpu_matches_an_uninterrupted_run(tmp_path):
    reference = _weights(_run(tmp_path / "ref", checkpoint_every_steps=2).model)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "x", train_set=worker.CrashingImages(77, image_size=32), checkpoint_every_steps=2)
    assert list_states(tmp_path / "x" / "state")
    resumed = _run(tmp_path / "x", resume=True, checkpoint_every_steps=2)
    assert resumed.resumed_from is not None
    diff = _max_diff(reference, _weights(resumed.model))
    print(f"\nresumed vs uninterrupted on CUDA: max |Δw| = {diff:.3g} (bitwise: {diff == 0})")
    assert diff < 1e-5


def test_features_on_the_gpu_are_cached_and_feed_the_search(tmp_path):
    model = worker.TinyClipClassifier().cuda()
    dataset = worker.TinyImages(transform=eval_transform(Preprocess(32, (0.5,) * 3, (0.25,) * 3)))
    fs = cached_features(model.image_encoder, dataset, cache_dir=tmp_path, device="cuda", precision="amp_bf16",
                         dataset_id=dataset_fingerprint(dataset, "tiny", "train"), preprocess={"size": 32})
    assert fs.features.shape == (48, 32) and fs.path is not None
    x, y = fs.tensors()
    head = model.head
    result = search_linear(x, y, LCCfg(search_trials=2, max_epochs=3, batch_sizes=[16], heldout_fraction=0.25),
                           init=(head.weight.detach().cpu(), head.bias.detach().cpu()), seed=0, device="cuda")
    assert result.head.weight.device.type == "cuda" and len(result.trials) == 8


def test_vit_b16_throughput_in_bf16(tmp_path, caplog):
    """ViT-B/16 (random weights) at global batch 256 = 2 × 128 micro-batches: images/s and peak memory."""
    import open_clip

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.image_encoder = open_clip.create_model("ViT-B-16", pretrained=None).visual
            self.head = torch.nn.Linear(512, 1000)

        def forward(self, x):
            return self.head(torch.nn.functional.normalize(self.image_encoder(x), dim=-1))

    data = torch.utils.data.TensorDataset(torch.randn(768, 3, 224, 224), torch.randint(0, 1000, (768,)))
    cfg = {"batch_size": 256, "micro_batch_size": 128, "max_steps": 6, "epochs": 2, "precision": "amp_bf16",
           "num_workers": 4, "log_every_steps": 1, "warmup_steps": 2}
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="wiseft.finetune.e2e"):
        finetune_e2e(Classifier(), data, worker.make_cfg(cfg), tmp_path, device="cuda", seed=0)
    rates = [float(m.group(1)) for r in caplog.records if (m := re.search(r"([\d.]+) images/s", r.getMessage()))]
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"\nViT-B/16 bf16, batch 256 (2 × 128): images/s per step {rates}, peak memory {peak:.1f} GiB, "
          f"total {time.perf_counter() - start:.1f} s")
    assert len(rates) == 6
