"""Test infrastructure shared by the unit and integration suites, one helper of each kind.

* :mod:`~tests.support.kafka`: the broker (the demo's ``EmbeddedBroker``), topics, producing.
* :mod:`~tests.support.daemon`: the daemon as a subprocess or in a thread.
* :mod:`~tests.support.webhook`: the HTTP receiver that records and answers requests.
* :mod:`~tests.support.metrics`: reading a ``/metrics`` exposition.
* :mod:`~tests.support.wait`: polling a condition with a deadline.
* :mod:`~tests.support.yaml_edit`: changing a YAML config through a parser.
* :mod:`~tests.support.prometheus`, :mod:`~tests.support.promql`, :mod:`~tests.support.net`,
  :mod:`~tests.support.results`: Prometheus, PromQL, ports and processes, status fixtures.

The fixtures in ``tests/conftest.py`` are thin wrappers around these modules; import the
helpers directly where a fixture does not fit (``from tests.support.kafka import produce``).
"""
