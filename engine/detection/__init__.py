"""Text detection: DB network (engine.models.detector), post-processing, predictor."""
