"""Training, whatever the task: compile and fit with checkpoints (`fit`), the recipe's
phases (`recipes`), learning-rate schedules, per-group rates (`optimizers`), the LR finder
and WiSE-FT weight interpolation. The task supplies the loss and metrics."""
