"""Fine-tuning of the detector and the recogniser: data checks, training loops, checkpoints."""
