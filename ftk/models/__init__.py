"""Model builders. Import after the backend is set (`ftk.backend.set_backend`)."""
