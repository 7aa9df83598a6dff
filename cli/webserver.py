"""``python -m cli.webserver [--follow-parent]``: the entry of the web's own process.

``teamocr run`` starts it beside its workers (and restarts it if it dies); ``teamocr web`` becomes
it. Every setting comes from the environment (``TEAMOCR_CONFIG`` and ``TEAMOCR_*``), as for a
worker. It is an entry of its own, not a ``teamocr`` command, because gevent must patch the
standard library before anything opens a socket or makes a lock: this module imports nothing of
the web, the daemon or the rest of the command line until it has.
"""

from __future__ import annotations

import sys

from web.server import EXIT_CONFIG  # light: web.server imports its parts only when it serves

__all__ = ["EXIT_CONFIG", "FOLLOW_PARENT", "main"]

FOLLOW_PARENT = "--follow-parent"  # given by `teamocr run`: the web leaves when its parent is gone


def main(argv: list[str] | None = None) -> int:
    """Parse the (one) option, read the settings, patch for gevent, set up logging and serve."""
    args = sys.argv[1:] if argv is None else argv
    unknown = [a for a in args if a != FOLLOW_PARENT]
    if unknown:
        print(
            f"teamocr web: unknown argument(s) {' '.join(unknown)}; settings come from TEAMOCR_* and TEAMOCR_CONFIG",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from config.errors import ConfigError
    from config.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"teamocr web: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if settings.web.async_mode == "gevent":
        from gevent import monkey

        monkey.patch_all()  # first, before the imports below open sockets or make locks
    import logging

    from cli.main import LOG_FORMAT
    from web.server import serve

    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr)
    return serve(settings, follow_parent=FOLLOW_PARENT in args)


if __name__ == "__main__":
    sys.exit(main())
