"""Test infrastructure shared by the unit and integration suites.

The fixtures in ``tests/conftest.py`` are thin wrappers around these modules; import the
helpers directly where a fixture does not fit (``from tests.support.kafka import produce``).
"""
