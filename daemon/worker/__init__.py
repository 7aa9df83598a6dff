"""The OCR worker: jobs from the stream through the engine (hot-swapping model versions) to outcome records."""
