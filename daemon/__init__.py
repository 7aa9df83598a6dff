"""The teamocr daemon: files in the shared folder become OCR jobs, results and live events.

One sub-package per stage: ``intake`` (watch the folder, wait for stable files, MD5 dedupe, queue),
``queue`` (the Redis connection and streams), ``worker`` (OCR jobs with the engine, hot model swap),
``results`` (the recorder, the SQLite store, events, teams), ``versions`` (the model-version
registry) and ``offline`` (batch OCR and training-data export, no service needed); ``records`` is
the result record and the typed stream messages, ``ports`` what the daemon needs of an engine, and
``service`` the supervisor of ``teamocr run``. It imports the engine, never the web.
"""
