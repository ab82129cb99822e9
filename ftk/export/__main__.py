"""`python -m ftk.export RUN_DIR`: export a finished run under the TensorFlow backend."""

import sys

from ftk.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
