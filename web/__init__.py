"""The team web: dashboard, search and REST API over the OCR results; see later issues."""
