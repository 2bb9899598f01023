"""Test support: stand-ins and generated descriptions that the tests and benches share (not part of the product).

The tests find this package as `support` (pytest puts `tests/` on the path for `tests/conftest.py`); a bench
script puts `tests/` on its path itself.
"""
