"""Ingest: Kafka messages in, per-model columns out.

``decode`` (raw payloads to columns and reject reasons) never imports ``confluent_kafka``,
so replay and baseline run without it; this package module therefore re-exports nothing.
``messages`` (the ``Message`` protocol, batch accessors, the version header), ``source``
(the consumer: rebalances, commits, lag), ``dead_letter`` (copies of rejected messages)
and ``client_log`` (librdkafka's log lines) are the Kafka side.
"""
