"""A real two-process gloo run of the sharded evaluation (CPU): gathered metrics equal one process's."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # ~45 s on 2 shared cores: spawns two interpreters

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep(world_size: int, rank: int, out_dir: str) -> None:
    """Build the same tiny model and sets in every process, run the sweep, write rank 0's metrics."""
    import numpy as np
    import open_clip

    from wiseft.datasets.base import EvalSet, Protocol
    from wiseft.evaluation import evaluate_settings, lerp_settings
    from wiseft.interpolation import clone_state_dict
    from wiseft.models import ClassificationHead, ImageClassifier

    torch.set_num_threads(1)
    open_clip.add_model_config(FIXTURES / "wiseft-test-tiny.json")
    torch.manual_seed(0)
    clip = open_clip.create_model("wiseft-test-tiny", pretrained=None)
    model = ImageClassifier(clip.visual, ClassificationHead(torch.randn(4, 16) * 10)).eval()
    theta0 = clone_state_dict(model)
    theta1 = {k: v + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1)) for k, v in theta0.items()}
    g = torch.Generator().manual_seed(2)
    data = torch.utils.data.TensorDataset(torch.randn(23, 3, 32, 32, generator=g), torch.randint(0, 4, (23,), generator=g))
    eval_set = EvalSet("toy", data, list("abcd"), Protocol())
    result = evaluate_settings(model, lerp_settings(theta0, theta1, [0.0, 0.5, 1.0]), [eval_set], batch_size=4)
    res = result.sets["toy"]
    payload = {"n": res.n, "metrics": res.metrics, "preds": {k: np.asarray(v).tolist() for k, v in res.preds.items()}}
    (Path(out_dir) / f"world{world_size}_rank{rank}.json").write_text(json.dumps(payload))


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        _sweep(world_size, rank, out_dir)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tmp_path):
    _sweep(1, 0, str(tmp_path))
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single = json.loads((tmp_path / "world1_rank0.json").read_text())
    for rank in (0, 1):  # every rank computes the metrics of the whole set
        assert json.loads((tmp_path / f"world2_rank{rank}.json").read_text()) == single
