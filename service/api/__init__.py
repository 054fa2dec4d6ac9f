"""Thin HTTP routers: parse, look up ids, call `service.recommend`, shape JSON."""
