"""Sort ImageNet's official flat validation folder into class folders.

    python data_prep/convert_imagenet_val.py --flat DIR --devkit ILSVRC2012_devkit_t12.tar.gz --out ROOT/imagenet/val

Same as ``wiseft data convert-imagenet-val`` (``--labels LOC_val_solution.csv`` works instead of ``--devkit``).
"""

import sys

from wiseft.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "convert-imagenet-val", *sys.argv[1:]]))
