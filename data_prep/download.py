"""Fetch a dataset of the registry, or print the manual steps: ``python data_prep/download.py NAME --root DIR``.

Same as ``wiseft data download``; kept here so the data preparation of the paper is one folder of scripts.
"""

import sys

from wiseft.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "download", *sys.argv[1:]]))
