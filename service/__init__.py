"""segue's online half (the HTTP service) and the `segue` command."""
