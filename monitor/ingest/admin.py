"""Kafka admin helpers: is a cluster reachable, create the topics the monitor reads and writes."""

from __future__ import annotations

from typing import Any

from collectors.transport.kafka_client import new_kafka_client


def _admin_kwargs(client_kwargs: dict[str, Any]) -> dict[str, Any]:
    from kafka import KafkaAdminClient

    return {k: v for k, v in client_kwargs.items() if k in KafkaAdminClient.DEFAULT_CONFIG}


def is_reachable(
    bootstrap_servers: list[str], timeout_s: float = 1.0, **client_kwargs: Any
) -> bool:
    """Return whether a Kafka broker answers a metadata request.

    Parameters
    ----------
    bootstrap_servers : list of str
        ``host:port`` addresses.
    timeout_s : float
        Upper bound on the wait, seconds.
    **client_kwargs
        Extra kafka-python settings (security, SASL, TLS); unknown ones are ignored.

    Returns
    -------
    bool
        True when a broker answered; never raises for an unreachable broker.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ms = max(1, int(timeout_s * 1000))
    kwargs = _admin_kwargs(client_kwargs)
    kwargs.update(
        bootstrap_servers=list(bootstrap_servers),
        request_timeout_ms=max(ms, 100),
        bootstrap_timeout_ms=ms,
        reconnect_backoff_max_ms=min(ms, 1000),
    )
    try:
        admin = new_kafka_client(KafkaAdminClient, **kwargs)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def ensure_topics(
    client_kwargs: dict[str, Any], topics: list[str], partitions: int = 1
) -> list[str]:
    """Create the topics that do not exist yet (idempotent).

    Parameters
    ----------
    client_kwargs : dict
        kafka-python settings, e.g. ``KafkaConfig.client_kwargs()``; must hold
        ``bootstrap_servers``.
    topics : list of str
        Topic names.
    partitions : int
        Partition count for the topics created here; existing topics keep theirs.

    Returns
    -------
    list of str
        The topics this call created.

    Raises
    ------
    ValueError
        A topic name is empty or ``partitions < 1``.
    kafka.errors.KafkaError
        The broker is unreachable or refused the request.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    bad = [t for t in topics if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"topic names must be non-empty strings, got {bad!r}")
    admin = new_kafka_client(KafkaAdminClient, **_admin_kwargs(client_kwargs))
    try:
        missing = sorted(set(topics) - set(admin.list_topics()))
        created = []
        for name in missing:  # one request each: a concurrent creator only fails its own topic
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
