"""Shared fixtures: a tiny random open_clip model registered offline (no download), and tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WISEFT_PROGRESS", "0")
# Tiny models on a few shared cores: one intra-op thread is ~10x faster than two threads fighting over
# contended cores (OpenMP spin-waits). Set WISEFT_TEST_THREADS to override.
torch.set_num_threads(int(os.environ.get("WISEFT_TEST_THREADS", "1")))

FIXTURES = Path(__file__).parent / "fixtures"
TINY_MODEL = "wiseft-test-tiny"  # width 32, one layer, 32 px images, 16-d embeddings


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, whatever ``WISEFT_TEST_THREADS`` says: tiny models train 10× faster on a
    shared 2-core machine, and identically from run to run (use with ``pytest.mark.usefixtures("one_thread")``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_name() -> str:
    """Name of a tiny CLIP config registered with open_clip; ``create_model(name)`` gives random weights."""
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(FIXTURES / f"{TINY_MODEL}.json")
    return TINY_MODEL


@pytest.fixture
def make_classifier(tiny_model_name):
    """``make(num_classes=5, seed=0)`` → a random float32 ImageClassifier on the CPU, in eval mode."""
    import open_clip

    from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier

    def make(num_classes: int = 5, seed: int = 0) -> ImageClassifier:
        torch.manual_seed(seed)
        clip = open_clip.create_model(tiny_model_name, pretrained=None)
        head = ClassificationHead(torch.randn(num_classes, clip.visual.output_dim) * 10)
        info = ClassifierInfo(model_name=tiny_model_name, pretrained=None,
                              classnames=[f"class{i}" for i in range(num_classes)], template_set="simple",
                              mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=(32, 32))
        return ImageClassifier(clip.visual, head, info=info).eval()

    return make


class CountingDataset(torch.utils.data.Dataset):
    """Random 32 px images with labels; counts ``__getitem__`` calls (i.e. image decodes)."""

    def __init__(self, n: int, num_classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.labels = torch.randint(0, num_classes, (n,), generator=g)
        self.calls = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        self.calls += 1
        return self.images[i], int(self.labels[i])


@pytest.fixture
def counting_dataset():
    """``counting_dataset(n, num_classes, seed=0)`` → a :class:`CountingDataset`."""
    return CountingDataset
