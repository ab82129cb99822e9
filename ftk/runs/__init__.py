"""Runs: a run directory's files (`files.RunFiles`), creating and reading one (`dirs`), and
the pipeline that fills it (`pipeline.run`: data -> model -> train -> evaluate -> export).

`ftk.runs.pipeline` imports Keras (inside its steps); `files` and `dirs` do not.
"""

from ftk.runs.dirs import load_run_config, new_run_dir, save_run_config
from ftk.runs.files import RunFiles

__all__ = ["RunFiles", "load_run_config", "new_run_dir", "save_run_config"]
