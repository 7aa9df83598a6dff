"""engine.errors: messages name the source and the cause, and errors survive pickling between processes."""

from __future__ import annotations

import pickle

from engine.errors import EngineError, ImageError, ImageTooLargeError, ModelError


def test_image_error_message_and_data() -> None:
    error = ImageTooLargeError("inbox/scan.png", "image is 2 x 2 = 4 pixels, over the limit of 3")
    assert str(error) == "inbox/scan.png: image is 2 x 2 = 4 pixels, over the limit of 3"
    assert (error.source, error.reason) == ("inbox/scan.png", "image is 2 x 2 = 4 pixels, over the limit of 3")
    assert isinstance(error, ImageError) and isinstance(error, EngineError)
    assert issubclass(ModelError, EngineError) and not issubclass(ModelError, ImageError)


def test_image_error_pickles() -> None:
    copy = pickle.loads(pickle.dumps(ImageError("a.png", "empty file")))
    assert type(copy) is ImageError and str(copy) == "a.png: empty file" and copy.reason == "empty file"
