"""Check a dataset on disk: ``python data_prep/verify.py NAME --root DIR [--sample N]`` (non-zero exit on problems).

Same as ``wiseft data verify``: layout, counts against the registry, and a decode of every image.
"""

import sys

from wiseft.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "verify", *sys.argv[1:]]))
