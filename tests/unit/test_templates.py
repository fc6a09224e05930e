"""Template registry: open_clip sets, packaged YAML sets, file: sets and user sets."""

from __future__ import annotations

import open_clip
import pytest

from wiseft.errors import WiseftError
from wiseft.templates import ArticleTemplate, add_templates, get_templates, list_templates

EXPECTED = {"openai_imagenet": 80, "simple_imagenet": 7, "simple": 1, "cifar": 18, "fmow": 16, "iwildcam": 2,
            "cars": 8, "dtd": 8, "food101": 1, "sun397": 2}


def test_every_expected_set_is_registered():
    assert set(EXPECTED) <= set(list_templates())


@pytest.mark.parametrize("name", list_templates())
def test_every_set_formats_with_one_placeholder(name):
    templates = get_templates(name)
    assert templates and all(isinstance(t, str) for t in templates)
    for t in templates:
        assert t.count("{}") == 1
        text = t.format("tabby cat")
        assert "tabby cat" in text and "{" not in text
    if name in EXPECTED:
        assert len(templates) == EXPECTED[name]


def test_open_clip_sets_are_converted_not_copied():
    got = get_templates("openai_imagenet")
    assert got == [fn("{}") for fn in open_clip.OPENAI_IMAGENET_TEMPLATES]
    assert [t.format("goldfish") for t in got] == [fn("goldfish") for fn in open_clip.OPENAI_IMAGENET_TEMPLATES]


def test_get_templates_returns_a_copy():
    get_templates("cifar").append("x {}")
    assert len(get_templates("cifar")) == 18


def test_fmow_article_templates_follow_wise_ft():
    fmow = get_templates("fmow")
    assert isinstance(fmow[2], ArticleTemplate) and isinstance(fmow[3], ArticleTemplate)
    assert fmow[2].format("airport") == "satellite photo of an airport."
    assert fmow[3].format("crop_field") == "aerial photo of a crop field."
    assert fmow[0].format("crop_field") == "satellite photo of a crop_field."  # wise-ft keeps the raw name here
    assert fmow[-1].format("dam") == "dam."


def test_file_templates(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# my prompts\na photo of a {}.\n\n  a sketch of the {}.  \n", encoding="utf-8")
    assert get_templates(f"file:{path}") == ["a photo of a {}.", "a sketch of the {}."]


@pytest.mark.parametrize("line, hint", [("a photo of a {c}.", "not '{c}'"), ("no placeholder", "exactly one"),
                                        ("{} and {}", "exactly one"), ("a {} {odd", "exactly one")])
def test_file_errors_name_file_and_line(tmp_path, line, hint):
    path = tmp_path / "bad.txt"
    path.write_text(f"a photo of a {{}}.\n{line}\n", encoding="utf-8")
    with pytest.raises(WiseftError, match=f"bad.txt:2") as info:
        get_templates(f"file:{path}")
    assert hint in str(info.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(WiseftError, match="does not exist"):
        get_templates(f"file:{tmp_path / 'none.txt'}")
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(WiseftError, match="holds no templates"):
        get_templates(f"file:{tmp_path / 'empty.txt'}")


def test_unknown_set_lists_known_ones():
    with pytest.raises(WiseftError, match="known sets: .*cifar"):
        get_templates("cifar11")


def test_add_templates():
    add_templates("test-mine", ["itap of a {}."])
    assert "test-mine" in list_templates()
    assert get_templates("test-mine") == ["itap of a {}."]
    with pytest.raises(WiseftError, match="already exists"):
        add_templates("test-mine", ["{}"])
    add_templates("test-mine", ["{}!"], overwrite=True)
    assert get_templates("test-mine") == ["{}!"]
    with pytest.raises(WiseftError, match="exactly one"):
        add_templates("test-bad", ["no slot"])
    with pytest.raises(WiseftError, match="empty"):
        add_templates("test-empty", [])
