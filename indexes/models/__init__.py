"""Models: each turns a `Dataset` into float32 vectors for tracks and artists."""
