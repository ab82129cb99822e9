"""Where a run computes: the Keras backend (`backend`, chosen before Keras is imported), devices,
distribution strategies and precision (`distribute`), and the pinned Keras workarounds
(`keras_fixes`)."""
