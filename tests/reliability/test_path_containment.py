"""Nothing is written outside the chosen output and cache folders, whatever the names in profiles and data.

Names that reach file names come from users and strangers: profile names, fine-tuning variant names, suite
members (dataset names), class names, figure names, run ids, dataset download destinations and archive members.
Each must either be refused with an error naming it, or be turned into one safe path component. The last test
runs every writer with hostile names inside a sandbox (``cwd``, ``$HOME``, ``$WISEFT_CACHE``, ``$WISEFT_DATA``
all in a temporary folder) and checks that every file created lies under the run folder, the cache or the
data root.

Reading-side escapes (class folders ``../../evil`` in a dataset YAML, ``dataset:../x`` sources, archive members
with ``..`` or links) are in ``tests/unit/test_datasets_verify.py`` and ``tests/unit/test_datasets_download.py``.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import torch

from wiseft.errors import DatasetError, ProfileError, WiseftError
from wiseft.profile import profile_from_dict
from tests.helpers.stub_notebooks import write_step_notebooks

HOSTILE = ["../../escape", "/etc/escape", "a/../../../escape", "..\\..\\escape", "escape/..", "~/escape",
           "$HOME/escape", "x\x00y"]


def _profile(**raw):
    base = {"name": "t", "model": {"name": "m"}, "data": {"reference": "r"}}
    base.update(raw)
    return profile_from_dict(base, source="t.yaml", check_references=False)


# ----------------------------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_profile_name_becomes_one_folder_under_runs(name):
    from wiseft.paths import default_run_dir

    folder = default_run_dir(_profile(name=name).name)
    assert folder.parent == Path("runs") and folder.name not in ("", ".", "..")
    assert "/" not in folder.name and "\\" not in folder.name and "\x00" not in folder.name


@pytest.mark.parametrize("name", ["..", "/", ".", "//..", "___", " "])
def test_a_profile_name_without_usable_characters_is_refused(name):
    with pytest.raises(ProfileError, match="t.yaml: key 'name'"):
        _profile(name=name)


@pytest.mark.parametrize("variant", ["x/../../../../escaped", "../../evil", "x/y", "/abs", ".hidden", "a..b", "",
                                     "a\\b"])
def test_variant_names_that_would_become_paths_are_refused(variant):
    with pytest.raises(ProfileError, match=r"t.yaml: key 'finetune.variants\[0\].name'"):
        _profile(finetune={"variants": [{"name": variant, "lr": 1e-5}]})


def test_checkpoint_names_cannot_leave_the_checkpoints_folder(tmp_path):
    from wiseft.run import RunContext

    ctx = RunContext(_profile(), out_dir=tmp_path / "run")
    assert ctx.checkpoint_path("finetuned_e2e_lr1e-5") == tmp_path / "run" / "checkpoints" / "finetuned_e2e_lr1e-5"
    for stem in HOSTILE + ["..", ""]:
        with pytest.raises(WiseftError, match="checkpoint name"):
            ctx.checkpoint_path(stem)


def test_figure_and_table_names_stay_in_the_figures_folder(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from wiseft.figures import save_figure, save_table

    folder = tmp_path / "run" / "figures"
    fig, _ = plt.subplots()
    for name in HOSTILE[:4]:
        for path in save_figure(fig, folder, name, formats=("png",)) + \
                save_table(pd.DataFrame({"a": [1.0]}), folder, name, formats=("csv",)):
            assert path.parent == folder
    plt.close(fig)
    assert {p.parent for p in tmp_path.rglob("*") if p.is_file()} == {folder}


# ------------------------------------------------------------------------------------------------ sandbox
def _executor(source, dest, parameters, *, kernel_name, cwd, step):
    """Writes what a step writes: the executed copy and a results row, into the run folder it is given."""
    from wiseft.results import ResultsStore

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(Path(source).read_bytes())
    ResultsStore(Path(parameters["run_dir"]) / "results.jsonl").append([dict(
        run_id="../../escape", profile="../../escape", model="m", pretrained=None, method="zeroshot", mode=None,
        alpha=None, dataset="../../escape", role="reference", metric="top1", value=0.5, n=1)])
    return dest


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_every_writer_with_hostile_names_stays_in_the_output_cache_and_data_folders(
        tmp_path, monkeypatch, make_classifier, clean_registry):
    from wiseft.checkpoint import load_classifier, save_classifier
    from wiseft.datasets import add_dataset_config, download_dataset
    from wiseft.datasets.imagenet_val import convert_imagenet_val
    from wiseft.finetune.features import cached_features
    from wiseft.paths import cache_dir, data_root
    from wiseft.pipeline import run_pipeline
    from wiseft.run import RunContext

    sandbox = tmp_path / "sandbox"
    work, cache, data, home, inputs = (sandbox / n for n in ("work", "cache", "data", "home", "inputs"))
    for d in (work, cache, data, home, inputs):
        d.mkdir(parents=True)
    monkeypatch.chdir(work)
    for var, value in (("HOME", home), ("XDG_CACHE_HOME", home / ".cache"), ("WISEFT_CACHE", cache),
                       ("WISEFT_DATA", data)):
        monkeypatch.setenv(var, str(value))
    siblings_before = set(os.listdir(tmp_path.parent))
    nbdir = inputs / "notebooks"
    write_step_notebooks(nbdir, ["data", "zeroshot", "table2"])
    # The test's own inputs: an archive with a member that climbs out, dataset entries, a flat ImageNet val.
    archive = inputs / "set.tar"
    with tarfile.open(archive, "w") as tf:
        for member in ("set/a/x.png", "../../escaped.png"):
            info = tarfile.TarInfo(member)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    (inputs / "sets.yaml").write_text(
        f"dest-escape:\n  classnames: [a]\n  splits: {{test: {{path: set}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', dest: ../../escaped.tar}}]}}\n"
        f"extract-escape:\n  classnames: [a]\n  splits: {{test: {{path: set}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', extract: true, extract_to: ../..}}]}}\n"
        f"member-escape:\n  classnames: [a]\n  splits: {{test: {{path: set}}}}\n"
        f"  download: {{files: [{{url: '{archive.as_uri()}', extract: true}}]}}\n")
    (inputs / "flat").mkdir()
    (inputs / "flat" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    (inputs / "labels.txt").write_text("ILSVRC2012_val_00000001.JPEG ../../escape\n")
    before = _files(sandbox)

    # 1. `wiseft run` of a suite whose name and members are hostile, into the default runs/<name>.
    suite = _profile(name="../../escape", suite=["../../m1", "x/../../../m2"], steps=["data", "zeroshot", "table2"])
    run_pipeline(suite, notebooks_dir=nbdir, executor=_executor)
    run_dir = work / "runs" / "escape"
    assert (run_dir / "report.md").is_file() and len(list(run_dir.glob("*/report.md"))) == 2

    # 2. Checkpoints and feature caches written through the run context and the cache (figures: above).
    ctx = RunContext(_profile(name="../escape2"))
    save_classifier(make_classifier(num_classes=3), ctx.checkpoint_path("zeroshot"), {})
    clf, meta = load_classifier(ctx.checkpoint_path("zeroshot"))
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    images = torch.utils.data.TensorDataset(torch.randn(5, 3, 2, 2), torch.zeros(5, dtype=torch.long))
    cached_features(encoder, images, cache_dir=cache_dir(), dataset_id={"name": "../../escape", "split": "/etc"},
                    preprocess={"name": "../../escape"})

    # 3. Downloads whose destinations or archive members try to leave the data root are refused.
    add_dataset_config(inputs / "sets.yaml")
    for name, match in (("dest-escape", "escapes"), ("extract-escape", "escapes"), ("member-escape", "unsafe")):
        with pytest.raises(DatasetError, match=match):
            download_dataset(name)

    # 4. ImageNet-val conversion with labels that are paths.
    with pytest.raises(DatasetError, match="one folder name"):
        convert_imagenet_val(inputs / "flat", data / "imagenet" / "val", labels=inputs / "labels.txt")

    after = _files(sandbox)
    assert before <= after  # nothing of the inputs was moved or deleted either
    created = after - before
    allowed = (work / "runs", cache, data_root())

    def third_party_cache(p: Path) -> bool:  # e.g. matplotlib's font cache under $HOME/.cache on a fresh machine
        rel = p.relative_to(home).parts if p.is_relative_to(home) else ()
        return len(rel) > 2 and rel[0] in (".cache", ".config") and rel[1] != "wiseft"

    outside = sorted(str(p.relative_to(sandbox)) for p in created
                     if not any(p.is_relative_to(a) for a in allowed) and not third_party_cache(p))
    assert not outside, f"files written outside the run, cache and data folders: {outside}"
    assert set(os.listdir(tmp_path.parent)) == siblings_before
    assert {p.name for p in (work / "runs").iterdir()} == {"escape", "escape2"}
    members = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and p.name.startswith("escape-"))
    assert len(members) == 2 and all("/" not in m and m not in (".", "..") for m in members)
    rows = [json.loads(line) for line in (run_dir / members[0] / "results.jsonl").read_text().splitlines()]
    assert rows and rows[0]["dataset"] == "../../escape"  # names are kept as data, only never as paths
