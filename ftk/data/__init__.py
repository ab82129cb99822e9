"""Data readers and splits. `ftk.data.text` for text classification."""
