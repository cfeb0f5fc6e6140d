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
                     help="re-execute notebooks whose inputs are unchanged and ignore the run cache")
    run.add_argument("--executor", choices=("serial", "local", "ray"),
                     help="where the runs execute (default: the profile's executor, else local)")
    run.add_argument("--workers", type=int, help="worker processes (local) or CPUs of a local Ray cluster")
    run.add_argument("--threads", type=int, help="torch threads per run (default 1)")
    run.add_argument("--address", help="address of an existing Ray cluster (ray executor), e.g. auto or host:6379")
    run.add_argument("--plan", action="store_true",
                     help="print every run the selected notebooks would dispatch, with resources and cost "
                          "estimates, and run nothing")
    commands.add_parser("book", help="build the site from book/generated/ into _build/html")
    commands.add_parser("clean", help="remove book/generated/ and .runs/")
    args = parser.parse_args(argv)

    if args.command == "run":
        from .book.jobs import PlanError, parse_override
        from .book.runner import run as run_notebooks

        try:
            overrides = dict(parse_override(p) for p in args.params)
        except PlanError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        executor = {key: getattr(args, key) for key in ("workers", "threads", "address")}
        executor["kind"] = args.executor
        executor = {key: value for key, value in executor.items() if value is not None}
        if args.plan:
            from .book.planning import print_plan

            return print_plan(args.profile, args.only, overrides, executor)
        return run_notebooks(args.profile, args.only, overrides, force=args.force, executor=executor)
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
