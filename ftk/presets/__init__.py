"""Pretrained backbones: resolving a preset name or directory (`resolve`), checksums and the
vendored-preset manifest (`files`), and `ftk presets pull` (`vendor`)."""
