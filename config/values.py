"""Type coercion and range checks for single setting values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Allowed values of string settings; extend here when the engine grows a new choice.
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": _LOG_LEVELS,
    "engine.model_set": ("small", "tiny"),
    "engine.backend": ("auto", "torch", "onnxruntime"),
    "engine.device": ("auto", "cpu", "cuda"),
    "engine.half_dtype": ("fp16", "bf16"),
    "engine.rec_cascade": ("off", "tiny"),
    "engine.rec_cascade_signal": ("mean", "min_char", "margin"),
    "web.async_mode": ("gevent", "threading"),
}

# String settings that also take a boolean: true means the named choice, false "off".
SWITCHES: dict[str, str] = {"engine.rec_cascade": "tiny"}


def _between(low: float, high: float) -> Callable[[float], bool]:
    return lambda v: low <= v <= high


def _positive(v: float) -> bool:
    return v > 0


def delay_list(text: str) -> tuple[float, ...]:
    """ "5, 30, 120" -> (5.0, 30.0, 120.0): seconds, each finite and 0 or more; ValueError otherwise."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if any(not 0 <= d < float("inf") for d in delays):
        raise ValueError(f"delays must be finite seconds, 0 or more, got {text!r}")
    return delays


def _delays(text: str) -> bool:
    try:
        delay_list(text)
    except ValueError:
        return False
    return True


# (test, what the value must be) for numeric settings (and a list of delays).
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "port": (_between(0, 65535), "between 0 and 65535"),
    "engine.threads": (lambda v: v >= 0, "0 (all cores) or more"),
    "engine.det_thresh": (_between(0.0, 1.0), "between 0 and 1"),
    "engine.det_box_thresh": (_between(0.0, 1.0), "between 0 and 1"),
    "engine.rec_min_confidence": (_between(0.0, 1.0), "between 0 and 1"),
    "engine.det_unclip_ratio": (_positive, "greater than 0"),
    "engine.det_max_pixels": (_positive, "greater than 0"),
    "engine.det_min_side": (_positive, "greater than 0"),
    "engine.det_max_side": (_positive, "greater than 0"),
    "engine.det_max_upscale": (lambda v: v >= 1.0, "1 or more"),
    "engine.det_text_height": (lambda v: v >= 0, "0 (off) or more"),
    "engine.det_probe_scale": (lambda v: 0 < v <= 1, "greater than 0 and at most 1"),
    "engine.rec_blank_levels": (lambda v: v >= 0, "0 (off) or more"),
    "engine.rec_cascade_gate": (lambda v: v >= 0, "0 (never read again) or more"),
    "engine.rec_batch_size": (_positive, "greater than 0"),
    "engine.det_batch_size": (_positive, "greater than 0"),
    "engine.gpu_det_batch_size": (_positive, "greater than 0"),
    "engine.gpu_rec_batch_size": (_positive, "greater than 0"),
    "engine.decode_threads": (lambda v: v >= 0, "0 (engine threads) or more"),
    "engine.max_image_pixels": (_positive, "greater than 0"),
    "engine.max_file_bytes": (_positive, "greater than 0"),
    "daemon.worker_nice": (_between(0, 19), "between 0 and 19"),
    "daemon.webhook_timeout": (_positive, "greater than 0"),
    "daemon.webhook_retry_delays": (_delays, "seconds separated by commas, e.g. 5, 30, 120"),
}


def parse(
    key: str,
    value: Any,
    typ: type,
    *,
    source: str,
    label: str | None = None,
    from_text: bool = False,
) -> Any:
    """Coerce ``value`` to ``typ`` and check its range; raise ConfigError naming ``label``.

    ``key`` is the dotted setting name; ``label`` is what the user wrote (an environment
    variable name, say) and defaults to ``key``. ``from_text`` parses strings (environment);
    otherwise the value must already have the right type (TOML, command line).
    """
    label = label or key
    if key in SWITCHES:
        value = _switch(value, SWITCHES[key], from_text=from_text)
    value = _coerce(value, typ, source=source, label=label, from_text=from_text)
    if key in CHOICES:
        value = value.upper() if key == "log_level" else value.lower()
        if value not in CHOICES[key]:
            allowed = ", ".join(CHOICES[key])
            raise ConfigError(source, f"must be one of {allowed}, got {value!r}", label)
    if key in RANGES:
        test, wanted = RANGES[key]
        if not test(value):
            raise ConfigError(source, f"must be {wanted}, got {value!r}", label)
    return value


def _switch(value: Any, on: str, *, from_text: bool) -> Any:
    """A boolean (or, from text, its spelling) as a switch's choice: ``on`` or "off"."""
    if from_text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        value = value.strip().lower() in _TRUE
    if isinstance(value, bool):
        return on if value else "off"
    return value


def _coerce(value: Any, typ: type, *, source: str, label: str, from_text: bool) -> Any:
    def wrong() -> ConfigError:
        return ConfigError(source, f"expected {typ.__name__}, got {value!r}", label)

    if from_text and isinstance(value, str):
        return _from_text(value.strip(), typ, wrong)
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    elif typ is Path:
        if isinstance(value, str | Path) and str(value):
            return Path(value)
    else:
        raise TypeError(f"unsupported setting type {typ!r} for {label}")
    raise wrong()


def _from_text(text: str, typ: type, wrong: Callable[[], ConfigError]) -> Any:
    if typ is str:
        return text
    if typ is Path:
        if not text:
            raise wrong()
        return Path(text)
    if typ is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise wrong()
    if typ in (int, float):
        try:
            return typ(text)
        except ValueError as exc:
            raise wrong() from exc
    raise TypeError(f"unsupported setting type {typ!r}")
