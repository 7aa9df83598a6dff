"""Text recognition: CRNN-family network (engine.models.recognizer), crops, CTC decoding, predictor,
and a cascade of two recognisers (tiny first, small for the unsure lines)."""
