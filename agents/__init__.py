"""Faust agents, one module each (posts, ocr, filter, control); the worker imports them."""
