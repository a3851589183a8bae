"""What the tests and the benchmarks share: real workers, records, loopback servers, stand-ins.

Not part of the worker (the wheel leaves it out); only tests/ and bench/ import it.
"""
