"""The store: what is computed or changes online (radio neighbours, related artists, stations)."""
