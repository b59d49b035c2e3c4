"""Puts the user's own config folders (TEXTCLASS_CONFIG_DIR, or `--config-dir`) before textclass's built-in configs."""
