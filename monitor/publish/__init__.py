"""What leaves the process for people and Prometheus: the results store, the ``/status``
documents, the metric catalogue, the HTTP server and readiness."""
