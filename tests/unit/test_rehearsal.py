"""Rehearsals: the profile transform, the reduced twins, fixture counts, and the wall between rehearsal and real runs."""

from __future__ import annotations

import pytest

from wiseft.errors import PipelineError
from wiseft.profile import dump_profile, load_profile
from wiseft.rehearsal import (BANNER, check_run_kind, describe_rehearsal, rehearsal_profile, rehearsal_run_dir,
                              twin_config, twin_name)


def test_a_twin_keeps_the_family_and_patch_and_shrinks_the_rest():
    import open_clip

    from wiseft.models import ensure_model_config

    cfg = twin_config("ViT-L-14-336")
    assert cfg["vision_cfg"]["patch_size"] == 14 and cfg["vision_cfg"]["image_size"] == 56
    assert cfg["vision_cfg"]["width"] == 64 and cfg["vision_cfg"]["layers"] == 2
    assert cfg["text_cfg"]["context_length"] == 77 and cfg["text_cfg"]["vocab_size"] == 49408
    ensure_model_config("rehearsal-ViT-L-14-336")  # what every notebook kernel does when it meets the name
    model = open_clip.create_model("rehearsal-ViT-L-14-336", pretrained=None)
    assert sum(p.numel() for p in model.visual.parameters()) < 200_000
    assert model.visual.patch_size == (14, 14)
    assert twin_name("ViT-B-16") == twin_name("rehearsal-ViT-B-16") == "rehearsal-ViT-B-16"


def test_the_transform_rewrites_model_data_and_sizes_and_leaves_the_real_profile_alone(tmp_path):
    real = load_profile("imagenet-vitl14-336")
    before = dump_profile(real)
    r = rehearsal_profile(real, data_root=tmp_path / "data")
    assert dump_profile(real) == before
    assert r.rehearsal and r.device == "cpu" and r.name == real.name
    assert r.model.name == "rehearsal-ViT-L-14-336" and r.model.pretrained is None
    assert r.data.root == str((tmp_path / "data").resolve()) and r.datasets == real.datasets
    assert r.eval.max_images and r.eval.precision == "fp32" and r.finetune.e2e.max_steps == 2
    assert r.finetune.e2e.grad_checkpointing and r.finetune.e2e.micro_batch_size == 4  # same code paths
    assert 0.5 in r.interpolation.alpha_grid() and len(r.interpolation.alpha_grid()) == 5
    assert "twin of ViT-L-14-336 at random init" in describe_rehearsal(r)
    assert rehearsal_run_dir(real.name).name == "imagenet-vitl14-336-rehearsal"
    # the rehearsal's profile.yaml, which the notebooks read, loads back to the same rehearsal
    (tmp_path / "p.yaml").write_text(dump_profile(r))
    assert dump_profile(load_profile(tmp_path / "p.yaml")) == dump_profile(r)


def test_the_world_profile_rehearses_on_the_tiny_world():
    r = rehearsal_profile(load_profile("mini"), data_root="unused")
    assert r.model.name == "wiseft-mini-clip" and r.model.pretrained == "world:tiny" and r.data.root is None
    assert all(len(v) <= 1 for v in (r.baselines.l2sp_lambdas, r.baselines.ema_decays))
    assert "'tiny' offline world" in describe_rehearsal(r)


def test_rehearsal_and_real_runs_never_share_a_folder(tmp_path):
    from wiseft.pipeline import run_pipeline
    from wiseft.run import RunContext

    real, rehearsal = load_profile("cifar10-vitb32"), rehearsal_profile(load_profile("cifar10-vitb32"), tmp_path / "d")
    real_dir, rehearsal_dir = tmp_path / "real", tmp_path / "rehearsal"
    RunContext(real, out_dir=real_dir).write_profile()
    RunContext(rehearsal, out_dir=rehearsal_dir).write_profile()
    check_run_kind(real_dir, False)
    check_run_kind(tmp_path / "empty", True)
    with pytest.raises(PipelineError, match="holds a real run; a rehearsal never writes"):
        run_pipeline(rehearsal, out_dir=real_dir, executor=lambda *a, **k: pytest.fail("ran a notebook"))
    with pytest.raises(PipelineError, match="holds a rehearsal"):
        RunContext(real, out_dir=rehearsal_dir)
    # nothing was written into the real run's folder (the run-folder lock file of the RunContext above aside)
    assert sorted(p.name for p in real_dir.iterdir()) == [".wiseft-run.lock", "profile.yaml"]


def test_every_results_row_of_a_rehearsal_says_so(tmp_path):
    from wiseft.run import RunContext

    r = rehearsal_profile(load_profile("cifar10-vitb32"), tmp_path / "d")
    row = RunContext(r, out_dir=tmp_path / "run").row(method="zeroshot", mode=None, alpha=None, dataset="cifar10",
                                                      role="reference", metric="top1", value=0.1, n=10,
                                                      extra={"lr": 1.0})
    assert row.extra == {"lr": 1.0, "rehearsal": True}
    real = RunContext(load_profile("cifar10-vitb32"), out_dir=tmp_path / "real")
    assert "rehearsal" not in real.row(method="zeroshot", mode=None, alpha=None, dataset="cifar10", role="reference",
                                       metric="top1", value=0.1, n=10).extra
    assert "REHEARSAL" in BANNER


def test_fixture_counts_pass_the_data_step_only_in_a_rehearsal(tmp_path):
    from wiseft.run import RunContext
    from wiseft.steps import check_data, run_data

    rehearsal = rehearsal_profile(load_profile("cifar10-vitb32"), tmp_path / "data")
    table = run_data(RunContext(rehearsal, out_dir=tmp_path / "rehearsal"), sample=4)
    assert set(table["status"]) == {"ok"} and "All 3 datasets are in place" in check_data(table)
    assert (table["images"] < table["expected"]).all()  # the fixtures' counts, shown beside the registry's
    real = load_profile("cifar10-vitb32", overrides=[f"data.root={tmp_path / 'data'}"])
    table = run_data(RunContext(real, out_dir=tmp_path / "real"), sample=4)
    assert set(table["status"]) == {"problems"}
    assert "the registry expects 50000" in str(table.attrs["problems"])


def test_fake_objectnet_mappings_parse_like_the_real_ones(tmp_path):
    from wiseft.datasets.fixtures import write_fake_objectnet_mappings
    from wiseft.datasets.objectnet import load_objectnet_mapping

    mapping = load_objectnet_mapping(write_fake_objectnet_mappings(tmp_path / "mappings"))
    assert len(mapping.folders) == 113 and len(mapping.imagenet_to_label) == 125  # as ObjectNet's own files
    assert mapping.groups[0] == (999, 998)  # ImageNet-2012 ids are translated to PyTorch's order
