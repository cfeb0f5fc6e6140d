"""Command line: ``python -m minima run|book|clean`` (see ``--help``)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minima", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute the notebooks under a profile into book/generated/")
    run.add_argument("--profile", default="default", help="profile in profiles.yml (default: default)")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (file stems)")
    run.add_argument("-p", dest="params", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter (YAML value) in every selected notebook that has it")
    run.add_argument("--force", action="store_true",
                     help="re-execute notebooks whose inputs are unchanged (skipped by default)")
    commands.add_parser("book", help="build the site from book/generated/ into _build/html")
    commands.add_parser("clean", help="remove book/generated/ and .runs/")
    args = parser.parse_args(argv)

    if args.command == "run":
        from .book.runner import PlanError, parse_override, run as run_notebooks

        try:
            overrides = dict(parse_override(p) for p in args.params)
        except PlanError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return run_notebooks(args.profile, args.only, overrides, force=args.force)
    if args.command == "book":
        from .book.site import BookError, build

        try:
            index = build()
        except BookError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"site built: {index}")
        return 0
    from .book.runner import clean

    clean()
    return 0


if __name__ == "__main__":
    sys.exit(main())
