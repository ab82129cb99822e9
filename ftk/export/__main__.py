"""`python -m ftk.export RUN_DIR`: export a finished run under the TensorFlow backend."""

import sys

from ftk.runtime.parent import die_with_parent

if __name__ == "__main__":
    die_with_parent()  # started by a training process: never outlive it (ftk.runtime.parent)
    from ftk.cli.main import main

    sys.exit(main(["export", *sys.argv[1:]]))
