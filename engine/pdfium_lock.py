"""One lock for PDFium in a process: pypdfium2 is not thread-safe (simultaneous calls from
threads may crash or corrupt the process, its documentation says), and the web renders pages and
writes searchable PDFs from its thread pool. Every entry point that may run in a thread holds it."""

from __future__ import annotations

import threading

PDFIUM = threading.RLock()
