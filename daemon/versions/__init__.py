"""Model versions: the registry of packaged and fine-tuned versions, and the operations that make them."""
