"""Settings: frozen dataclasses filled from config/default.toml, a user file and TEAMOCR_* env.

Later sources win: ``config/default.toml`` -> user file (argument or ``TEAMOCR_CONFIG``) ->
``TEAMOCR_*`` environment variables. Nested engine keys use a double underscore in the
environment (``TEAMOCR_ENGINE__MODEL_SET=tiny``). Unknown keys and badly typed values raise
:class:`~config.errors.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from config.errors import ConfigError
from config.values import parse

ENV_PREFIX = "TEAMOCR_"
CONFIG_ENV = "TEAMOCR_CONFIG"
ENV_SOURCE = "environment"
DEFAULT_SOURCE = "config/default.toml"


@dataclass(frozen=True)
class EngineSettings:
    """How the OCR engine runs; thresholds live here, not in the engine code."""

    model_set: str = "small"  # "small" (PP-OCRv6 small, accurate) | "tiny" (fast)
    backend: str = "auto"  # "auto" | "torch" | "onnxruntime"
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    threads: int = 0  # 0 = all cores
    det_thresh: float = 0.3  # pixel threshold on the DB probability map
    det_box_thresh: float = 0.5  # min mean score of a box to keep it
    det_unclip_ratio: float = 1.6
    det_max_pixels: int = 4_000_000  # pixel budget for one detection pass; bigger images are tiled
    det_min_side: int = 736
    det_max_side: int = 4000  # a longer side is shrunk to this before detection
    det_max_upscale: float = 2.0  # small images are enlarged at most this much for detection
    det_text_height: float = 0.0  # > 0: a probe pass picks each image's scale, its smaller lines this tall (0 = off)
    det_probe_scale: float = 0.5  # the probe pass's share of the usual detection scale, and the least share chosen
    rec_batch_size: int = 4  # small batches of width-sorted lines measured fastest on CPU
    rec_min_width: int = 0  # pad narrower line crops to this width (0 = batch max only)
    rec_blank_levels: int = 8  # a line crop spanning fewer grey levels in every channel is blank: no line (0 = off)
    rec_cascade: str = "off"  # "tiny" (or true): lines read by tiny first, the unsure ones again by model_set | "off"
    rec_cascade_signal: str = "mean"  # the cascade's gate signal: "mean" | "min_char" | "margin"
    rec_cascade_gate: float = 0.988  # a line whose first reading's signal is below this is read again (README: Speed)
    enhance: str = ""  # comma-separated preprocessing steps: gray, clahe, denoise, binarise, dark
    half: bool = False  # fp16 on CUDA (torch backend)
    half_dtype: str = "fp16"  # the 16-bit type of `half`: "fp16" | "bf16"
    det_batch_size: int = 1  # images of one shape per detection pass on CPU (batching measured no gain)
    gpu_det_batch_size: int = 8  # ... on CUDA
    gpu_rec_batch_size: int = 64  # text lines per recognition batch on CUDA
    decode_threads: int = 0  # threads decoding a batch of images; 0 = engine threads
    spin: bool = True  # ONNX Runtime's idle intra-op threads spin-wait (false: better on an overloaded host)
    int8: bool = True  # recogniser MatMuls quantised to INT8 (ONNX Runtime), made once into cache_dir
    cache_dir: str = ""  # derived model files (INT8); empty = $XDG_CACHE_HOME/teamocr
    rec_min_confidence: float = 0.5  # lines below are dropped
    orientation: str = "auto"  # "auto": pages turned 90/180/270 degrees are read upright | "off"
    orientation_min_score: float = 0.5  # least probability of a turn to try it (the recogniser decides)
    max_image_pixels: int = 100_000_000  # decompression-bomb guard (pixels)
    max_file_bytes: int = 200_000_000
    pdf_dpi: float = 200.0  # PDF pages are rendered for OCR at this resolution (less past det_max_pixels)
    max_pages: int = 500  # pages of one document read; a longer one is read up to here and says so
    tables: bool = True  # find tables (ruled and aligned columns) and their cells on each page
    prefetch_pages: int = 2  # a document's pages rendered ahead while earlier ones are read; 0 = none


@dataclass(frozen=True)
class DaemonSettings:
    """How the watcher, queue, workers and store behave."""

    polling: bool = False  # polling observer, for network shares (NFS/SMB send no inotify events)
    poll_interval: float = 1.0  # seconds between polls of the polling observer
    stable_seconds: float = 1.0  # a file is read once its size and mtime held still this long
    rescan_seconds: float = 60.0  # full rescan period, catches lost events
    follow_symlinks: bool = False  # symlinks inside the folder; never ones that lead outside it
    workers: int = 1  # worker processes started by `teamocr run`
    batch_size: int = 4  # jobs a worker takes at once
    worker_nice: int = 10  # CPU priority of worker processes (0-19): OCR yields to the web's requests
    claim_idle_seconds: float = 60.0  # a job unacknowledged this long is taken over from its worker
    max_attempts: int = 3  # tries of a job before it stays failed
    retry_backoff: float = 2.0  # seconds before the first retry, doubling after
    share_wait_seconds: float = 86400.0  # how long a job waits for its share to come back before it fails
    outputs: bool = False  # also write outputs/<run>/json and outputs/<run>/visualization
    retention_days: float = 0.0  # remove results older than this; 0 keeps them forever
    retention_delete_sources: bool = False  # with retention, also delete the source files
    latest_cache: int = 200  # results kept in the Redis cache for the dashboard
    # Webhook deliveries: seconds to wait after each failed attempt (the count of delays + 1 is the
    # number of attempts); a POST gets webhook_timeout seconds to connect and to answer.
    webhook_retry_delays: str = "5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800"
    webhook_timeout: float = 5.0


@dataclass(frozen=True)
class TeamSettings:
    """Who sees which channel (first-level folder of the shared folder)."""

    default_team: str = ""  # owns the root and unmapped channels; empty = the first team created
    channels: str = ""  # "finance=accounting, sales=sales"


@dataclass(frozen=True)
class WebSettings:
    """The team web: tokens, limits, uploads."""

    jwt_secret: str = ""  # empty: a random secret is generated into data_dir/jwt_secret (0600)
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "teamocr"
    jwt_audience: str = "teamocr-api"
    access_ttl: int = 900  # seconds an access token lives
    refresh_ttl: int = 1_209_600  # seconds a refresh token lives (14 days)
    session_max_age: int = 2_592_000  # seconds a login lasts at most, however often it refreshes (30 days)
    login_limit: str = "10 per minute"  # per (username, client address) and per client address; also refresh
    api_limit: str = "600 per minute"  # per user (a login), and per API key
    keys_limit: str = "2400 per minute"  # all API keys of one user together
    refused_limit: str = "120 per minute"  # requests with a missing or bad token, per client address
    max_request_bytes: int = 100_000_000  # larger bodies get 413
    max_zip_files: int = 500
    max_zip_bytes: int = 500_000_000  # uncompressed total of one ZIP
    # Upload budgets (0 = no limit). One request: over its own budget is 413.
    max_request_files: int = 1_000  # images one upload request writes (ZIP members included)
    max_request_zips: int = 10  # ZIPs in one upload request
    max_request_write_bytes: int = 1_000_000_000  # bytes one upload request writes (ZIPs inflated)
    # Per user and per team, counted per UTC day in Redis: over is 429 with Retry-After.
    user_jobs_per_day: int = 2_000  # files a user uploads in a day
    user_bytes_per_day: int = 2 << 30  # bytes a user uploads in a day (2 GiB)
    team_jobs_per_day: int = 10_000  # files a team's users upload in a day
    team_bytes_per_day: int = 10 << 30  # bytes a team's users upload in a day (10 GiB)
    # Jobs waiting (queued or being read) at once, per uploading user and per team: over is 429.
    user_queued_jobs: int = 1_000  # a user's uploads not yet read
    team_queued_jobs: int = 5_000  # the team's files not yet read (its folders' and uploads')
    user_renders_at_once: int = 2  # searchable PDFs, exports, workbooks one user has being made at once
    min_free_bytes: int = 1 << 30  # an upload that would leave less free in shared_dir is 507
    trusted_proxies: int = 0  # reverse proxies in front of the web whose X-Forwarded-* are believed
    metrics_token: str = ""  # a scraper's Bearer secret for /metrics (16+ characters); empty: a member's token only
    metrics_max_age: float = 15.0  # seconds /metrics reuses the store's counts before counting again
    annotated_cache_bytes: int = 64 << 20  # memory for drawn /annotated images (LRU); 0 = none kept
    async_mode: str = "gevent"  # how `teamocr run`/`teamocr web` serve: gevent, or threading (werkzeug)
    # Webhook URLs may name private, loopback and link-local addresses (checked when registered and
    # at each delivery, by the web and the daemon's deliverer alike): for a receiver on the LAN.
    webhooks_allow_private: bool = False


# Engine settings a channel may set for itself ([channels.<name>] tables).
CHANNEL_KEYS = (
    "det_thresh",
    "det_box_thresh",
    "det_unclip_ratio",
    "rec_min_confidence",
    "model_set",
    "enhance",
    "orientation",
)


@dataclass(frozen=True)
class ChannelSettings:
    """One channel's engine settings (``[channels.<name>]``, ``TEAMOCR_CHANNELS__<NAME>__<KEY>``):
    ``engine`` holds the keys of :data:`CHANNEL_KEYS` it sets, in that order; the rest are the
    engine's own."""

    name: str
    engine: tuple[tuple[str, Any], ...] = ()

    def overrides(self) -> dict[str, Any]:
        return dict(self.engine)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from configuration; built by :func:`load_settings`."""

    shared_dir: Path  # the drop folder, absolute
    data_dir: Path  # results and state, absolute
    redis_url: str | None  # None = embedded
    host: str
    port: int
    log_level: str
    engine: EngineSettings
    daemon: DaemonSettings
    teams: TeamSettings
    web: WebSettings
    channels: tuple[ChannelSettings, ...] = ()

    def channel_engine(self, channel: str) -> dict[str, Any]:
        """The engine settings ``channel`` sets for itself (``{}``: the engine's own). Names match
        whatever their case (an environment variable's name is read in lower case)."""
        for found in self.channels:
            if found.name.casefold() == channel.casefold():
                return found.overrides()
        return {}


CHANNELS = "channels"  # [channels.<name>] tables: see ChannelSettings

# [table] name -> the dataclass holding its keys
SECTIONS: dict[str, type] = {
    "engine": EngineSettings,
    "daemon": DaemonSettings,
    "teams": TeamSettings,
    "web": WebSettings,
}


def load_settings(user_file: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the defaults, then ``user_file`` (or ``$TEAMOCR_CONFIG``), then ``TEAMOCR_*`` env.

    ``env`` defaults to ``os.environ``; tests pass a dict. Raises ConfigError.
    """
    env = os.environ if env is None else env
    schema = _schema()
    raw: dict[str, Any] = {}
    default_text = resources.files("config").joinpath("default.toml").read_text(encoding="utf-8")
    raw.update(_from_toml(_parse_toml(default_text, DEFAULT_SOURCE), DEFAULT_SOURCE, schema))
    if user_file is None and env.get(CONFIG_ENV):
        user_file = Path(env[CONFIG_ENV])
    if user_file is not None:
        raw.update(_from_toml(_read_toml(Path(user_file)), str(user_file), schema))
    raw.update(_from_env(env, schema))
    missing = sorted(set(schema) - set(raw))
    if missing:
        raise ConfigError(DEFAULT_SOURCE, "missing setting", missing[0])
    return _build(raw)


def apply_overrides(settings: Settings, values: Mapping[str, Any], source: str) -> Settings:
    """Return ``settings`` with dotted keys (``"engine.model_set"``) replaced, checked as above."""
    schema = _schema()
    changed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in schema:
            raise ConfigError(source, "unknown setting", key)
        changed[key] = parse(key, value, schema[key], source=source)
    top, sections = _split(changed)
    replaced = {name: dataclasses.replace(getattr(settings, name), **values) for name, values in sections.items()}
    return _finish(dataclasses.replace(settings, **top, **replaced))


def _schema() -> dict[str, type]:
    """Map each dotted setting name to its plain type (``str | None`` counts as ``str``)."""
    schema: dict[str, type] = {}
    for name, hint in get_type_hints(Settings).items():
        if name not in SECTIONS and name != CHANNELS:
            schema[name] = _plain(hint)
    for section, cls in SECTIONS.items():
        for name, hint in get_type_hints(cls).items():
            schema[f"{section}.{name}"] = _plain(hint)
    return schema


def _plain(hint: Any) -> type:
    if isinstance(hint, types.UnionType):
        (inner,) = [arg for arg in hint.__args__ if arg is not type(None)]
        return inner
    return hint


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read settings file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"settings file is not UTF-8: {exc}") from exc
    return _parse_toml(text, str(path))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from exc


def _from_toml(data: Mapping[str, Any], source: str, schema: Mapping[str, type]) -> dict[str, Any]:
    """Flatten one TOML document to dotted keys, checking names, types and ranges."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if name == CHANNELS:
            flat.update(_channel_tables(value, source))
        elif name in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(source, f"expected a [{name}] table", name)
            flat.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    values: dict[str, Any] = {}
    for key, value in flat.items():
        if key.startswith(f"{CHANNELS}."):
            values[key] = _channel_value(key, value, schema, source=source)
            continue
        if key not in schema:
            raise ConfigError(source, "unknown setting", key)
        values[key] = parse(key, value, schema[key], source=source)
    return values


def _channel_tables(value: Any, source: str) -> dict[str, Any]:
    """``[channels.<name>]`` tables flattened to ``channels.<name>.<key>``."""
    if not isinstance(value, dict) or not all(isinstance(table, dict) for table in value.values()):
        raise ConfigError(source, "expected [channels.<name>] tables", CHANNELS)
    return {f"{CHANNELS}.{name}.{key}": item for name, table in value.items() for key, item in table.items()}


def _channel_value(
    key: str, value: Any, schema: Mapping[str, type], *, source: str, label: str | None = None, from_text: bool = False
) -> Any:
    """A ``channels.<name>.<key>`` value, checked as the engine's own ``engine.<key>`` is."""
    _, _, rest = key.partition(".")
    name, _, field = rest.rpartition(".")
    if not name or field not in CHANNEL_KEYS:
        allowed = ", ".join(CHANNEL_KEYS)
        raise ConfigError(source, f"a channel may set only {allowed}", label or key)
    engine_key = f"engine.{field}"
    return parse(engine_key, value, schema[engine_key], source=source, label=label or key, from_text=from_text)


def _from_env(env: Mapping[str, str], schema: Mapping[str, type]) -> dict[str, Any]:
    """Read ``TEAMOCR_*`` variables; ``__`` separates the section from the key."""
    values: dict[str, Any] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key.startswith(f"{CHANNELS}."):  # TEAMOCR_CHANNELS__<NAME>__<KEY>: the name in lower case
            values[key] = _channel_value(key, text, schema, source=ENV_SOURCE, label=name, from_text=True)
            continue
        if key not in schema:
            raise ConfigError(ENV_SOURCE, "unknown setting", name)
        values[key] = parse(key, text, schema[key], source=ENV_SOURCE, label=name, from_text=True)
    return values


def _build(raw: Mapping[str, Any]) -> Settings:
    channels = _channels({key: value for key, value in raw.items() if key.startswith(f"{CHANNELS}.")})
    top, sections = _split({key: value for key, value in raw.items() if not key.startswith(f"{CHANNELS}.")})
    built = Settings(
        **top, **{name: cls(**sections.get(name, {})) for name, cls in SECTIONS.items()}, channels=channels
    )
    return _finish(built)


def _channels(flat: Mapping[str, Any]) -> tuple[ChannelSettings, ...]:
    """ChannelSettings from ``channels.<name>.<key>`` values, by name, keys in CHANNEL_KEYS order."""
    tables: dict[str, tuple[str, dict[str, Any]]] = {}  # name, case folded -> (first spelling, keys)
    for key, value in flat.items():  # in source order: a later source (the environment) wins
        name, _, field = key[len(CHANNELS) + 1 :].rpartition(".")
        tables.setdefault(name.casefold(), (name, {}))[1][field] = value
    return tuple(
        ChannelSettings(name, tuple((k, table[k]) for k in CHANNEL_KEYS if k in table))
        for _, (name, table) in sorted(tables.items())
    )


def _split(flat: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split dotted keys into top-level values and per-table values (without the prefix)."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        section, dot, name = key.partition(".")
        if dot:
            sections.setdefault(section, {})[name] = value
        else:
            top[section] = value
    return top, sections


def _finish(settings: Settings) -> Settings:
    """Make folders absolute (against the working directory) and map an empty Redis URL to None."""
    return dataclasses.replace(
        settings,
        shared_dir=_absolute(settings.shared_dir),
        data_dir=_absolute(settings.data_dir),
        redis_url=settings.redis_url or None,
    )


def _absolute(path: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


# Settings a child is not handed in its environment: it reads them where the parent did (the
# settings file, TEAMOCR_* of the environment, or data_dir/jwt_secret), so a secret stays off argv/env.
PRIVATE_SETTINGS = {"web.jwt_secret", "web.metrics_token"}


def settings_env(settings: Settings) -> dict[str, str]:
    """TEAMOCR_* variables that give a child process exactly these settings."""
    env = {
        "TEAMOCR_DATA_DIR": str(settings.data_dir),
        "TEAMOCR_SHARED_DIR": str(settings.shared_dir),
        "TEAMOCR_LOG_LEVEL": settings.log_level,
        "TEAMOCR_HOST": settings.host,
        "TEAMOCR_PORT": str(settings.port),
    }
    for section in ("engine", "daemon", "teams", "web"):
        for key, value in dataclasses.asdict(getattr(settings, section)).items():
            if f"{section}.{key}" in PRIVATE_SETTINGS:
                continue
            env[f"TEAMOCR_{section.upper()}__{key.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    for channel in settings.channels:
        for key, value in channel.engine:
            env[f"TEAMOCR_CHANNELS__{channel.name.upper()}__{key.upper()}"] = str(value)
    return env
