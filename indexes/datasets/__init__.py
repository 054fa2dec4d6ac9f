"""Loaders: each real format (and the synthetic generator) yields one internal shape, `Dataset`."""
