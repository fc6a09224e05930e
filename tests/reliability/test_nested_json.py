"""JSON nested 100,000 levels deep in any file wiseft reads raises the reader's own error, never
`RecursionError` (issue 19: every input that crosses a trust boundary is read with bounds)."""

from __future__ import annotations

import pytest
import torch

from wiseft.errors import CheckpointError, DatasetError, WiseftError

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_training_state_marker(tmp_path):
    from wiseft.finetune.state import MARKER, TrainProgress, capture_rng, load_train_state, save_train_state

    model = torch.nn.Linear(3, 2)
    folder = save_train_state(tmp_path, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              progress=TrainProgress(global_step=1), rng_states=[capture_rng()], trainer={})
    (folder / MARKER).write_bytes(DEEP)
    with pytest.raises(CheckpointError, match="nested deeper"):
        load_train_state(folder)


def test_feature_cache_metadata(tmp_path):
    from wiseft.finetune.features import _read

    (tmp_path / "meta.json").write_bytes(DEEP)
    with pytest.raises(WiseftError, match="nested deeper.*delete the folder"):
        _read(tmp_path)


def test_objectnet_mapping(tmp_path):
    from wiseft.datasets.objectnet import _read_json

    (tmp_path / "mapping.json").write_bytes(DEEP)
    with pytest.raises(DatasetError, match="nested deeper"):
        _read_json(tmp_path / "mapping.json")


def test_done_marker_and_lock_file(tmp_path):
    from wiseft.locks import _holder
    from wiseft.pipeline.markers import read_marker

    (tmp_path / "zeroshot.json").write_bytes(DEEP)
    assert read_marker(tmp_path, "zeroshot") is None  # unreadable: the step runs again
    (tmp_path / ".wiseft-run.lock").write_bytes(DEEP[:4000])
    assert _holder(tmp_path / ".wiseft-run.lock") == "another process"
