"""Model builders. Import after the backend is set (`ftk.runtime.backend.set_backend`)."""
