"""teamocr's OCR engine: a plain library, image in, page result out.

Start from :func:`engine.pipeline.build_engine`. Nothing here knows about Redis, Flask or folders.
"""

__version__ = "0.1.0"
