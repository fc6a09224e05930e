"""``wiseft profiles``: list the packaged profiles, or show one resolved profile as YAML."""

from __future__ import annotations

import argparse

from ..profile import dump_profile, list_profiles, load_profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profiles", help="list the packaged profiles (or show one, resolved)",
                       description="List every packaged profile with a one-line description, or print one "
                                   "profile after `extends` and --set overrides are applied.")
    p.add_argument("name", nargs="?", help="a profile name or YAML path to show in full")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key before showing (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name:
        print(dump_profile(load_profile(args.name, overrides=args.overrides)), end="")
        return 0
    rows = list_profiles()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description.splitlines()[0] if description else ''}")
    return 0
