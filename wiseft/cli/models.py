"""``wiseft models``: which pretrained weights each profile needs, whether they are cached, and fetching them.

GPU nodes often have no internet: run ``wiseft models download`` once on a login node, with the same
``WISEFT_CACHE`` as the compute nodes, and the runs there find the weights in ``<cache>/weights``.
"""

from __future__ import annotations

import argparse

from ..errors import WiseftError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the weights each profile needs (cached or not) and download them",
                       description="Pretrained CLIP weights are fetched like data: once, on a node with internet, "
                                   "into wiseft's cache (<cache>/weights, $WISEFT_CACHE/weights), where runs on "
                                   "nodes without internet find them.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="every packaged profile's model and pretrained tag, and whether it is cached")
    q.set_defaults(func=run_list)
    q = msub.add_parser("download", help="fetch the weights of a model and tag (or of a profile, or of all)")
    q.add_argument("name", nargs="?", help="an open_clip model name (with TAG), or a profile name")
    q.add_argument("tag", nargs="?", help="the open_clip pretrained tag (e.g. openai)")
    q.add_argument("--all", action="store_true", help="the weights of every packaged profile")
    q.set_defaults(func=run_download)


def _profile_models(name: str) -> list[tuple[str, str | None]]:
    from ..profile import load_profile

    profile = load_profile(name)
    pairs = [(profile.model.name, profile.model.pretrained)]
    pairs += [(m.model.name, m.model.pretrained) for m in profile.suite_members()]
    return list(dict.fromkeys(pairs))


def _needs() -> dict[tuple[str, str | None], list[str]]:
    """(model, pretrained) → the packaged profiles that use it."""
    from ..profile import list_profiles

    needs: dict[tuple[str, str | None], list[str]] = {}
    for name, _ in list_profiles():
        for pair in _profile_models(name):
            needs.setdefault(pair, []).append(name)
    return needs


def _kind(pretrained: str | None) -> str:
    from ..models import is_open_clip_tag

    if not pretrained:
        return "none"
    if is_open_clip_tag(pretrained):
        return "tag"
    return "world" if pretrained.startswith("world:") else "file"


def _status(model: str, pretrained: str | None) -> tuple[str, str]:
    """(source, where/state) of one model + pretrained value, without touching the network."""
    from pathlib import Path

    kind = _kind(pretrained)
    if kind == "none":
        return "random init", "-"
    if kind == "world":
        return "offline world", "built and cached by the data step"
    if kind == "file":
        path = Path(pretrained).expanduser()
        return "local file", str(path) if path.is_file() else f"MISSING: {path}"
    from ..weights_cache import find_cached, weights_source

    source = weights_source(model, pretrained)
    found = find_cached(model, pretrained)
    return source.location, str(found) if found else "not cached"


def run_list(args: argparse.Namespace) -> int:
    from ..weights_cache import weights_dir

    rows = [(model, str(pretrained), *_status(model, pretrained), ", ".join(profiles))
            for (model, pretrained), profiles in _needs().items()]
    header = ("model", "pretrained", "source", "cached at", "profiles")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[-1])
    print(f"\nweights cache: {weights_dir()} (set WISEFT_CACHE to move it; fetch with `wiseft models download`)")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..weights_cache import ensure_weights

    if args.all:
        pairs = list(_needs())
    elif args.name and args.tag:
        pairs = [(args.name, args.tag)]
    elif args.name:
        from ..errors import ProfileError

        try:
            pairs = _profile_models(args.name)
        except ProfileError as e:
            raise WiseftError(f"{args.name!r} is not a profile ({str(e).splitlines()[0]}); to fetch a model, name "
                              f"its tag too: wiseft models download {args.name} TAG") from e
    else:
        raise WiseftError("name a model and tag (wiseft models download ViT-B-16 openai), a profile "
                          "(wiseft models download imagenet-vitb16), or use --all")
    tags = [(model, tag) for model, tag in pairs if _kind(tag) == "tag"]
    for model, tag in pairs:
        if _kind(tag) != "tag":
            print(f"{model} {tag}: nothing to download ({_status(model, tag)[0]})")
    for model, tag in tags:
        print(f"{model} {tag}: {ensure_weights(model, tag)}")
    return 0
