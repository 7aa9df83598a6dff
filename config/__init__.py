"""Typed teamocr settings: config/default.toml, then a user file, then TEAMOCR_* variables."""

from config.errors import ConfigError
from config.settings import EngineSettings, Settings, apply_overrides, load_settings

__all__ = ["ConfigError", "EngineSettings", "Settings", "apply_overrides", "load_settings"]
