"""Git as the training history: commits with trailers, scores per version, roll-back."""
