"""End-to-end task pipelines. Import after the backend is set."""
