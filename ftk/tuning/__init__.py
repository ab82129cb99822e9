"""Hyperparameter search with KerasTuner: `python train.py --tune` (see `ftk.tuning.search`)."""
