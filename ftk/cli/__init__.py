"""The `ftk` command and a baked project's `train.py`: `main` and `train_main` (`ftk.cli.main`),
their argument parsers (`parser`), and `ftk new` (`new`)."""
