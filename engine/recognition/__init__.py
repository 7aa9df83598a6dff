"""Text recognition: CRNN-family network (engine.models.recognizer), crops, CTC decoding, predictor."""
