"""``python -m minima.bench NAME``: run one benchmark (see ``minima.bench.BENCHMARKS``)."""
import importlib
import sys

from . import BENCHMARKS


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in BENCHMARKS:
        print(f"usage: python -m minima.bench NAME, with NAME one of {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    importlib.import_module(BENCHMARKS[argv[0]]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
