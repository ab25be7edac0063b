"""Manual partition assignment for the ingester, with topic ids to notice recreated topics.

No consumer group: the ingester assigns itself the partitions of its topics that
its share gives it (all of them by default; with ``kafka.assignment`` of
``members`` ingesters, partition ``p`` of every topic to member ``p % members``,
so partition ``p`` of the events and of the labels topic, where an event and its
label land since both are keyed by ``event_id``, go to the same ingester) and
seeks each new one to the offset stored in DuckDB. Offsets are only meaningful
for the topic they were read from, so they are stored with the topic's id
(KIP-516, reported by Kafka >= 2.8 and Tansu). A topic that was deleted and
created again, or any topic of a memory-only broker that restarted, has a new id:
its stored offsets are then ignored and it is read from the beginning (the
store rejects event ids it already holds).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def cluster_topic_id(consumer: Any, topic: str) -> str | None:
    """The broker's id of ``topic`` from kafka-python's metadata cache (None if unknown).

    kafka-python keeps topic ids on its (private) cluster metadata object; when a
    version does not, this returns None and recreated topics go unnoticed.
    """
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
    topic_id = cluster.topic_id(topic) if cluster is not None else None
    return None if topic_id is None or int(topic_id) == 0 else str(topic_id)


class AssignmentError(ValueError):
    """A static partition assignment that cannot keep events with their labels."""


def owned(partitions: set[int], member: int, members: int) -> set[int]:
    """The partitions member ``member`` of ``members`` takes: ``p % members == member``.

    >>> sorted(owned({0, 1, 2, 3}, 1, 2))
    [1, 3]
    """
    return {p for p in partitions if p % members == member}


def check_share(counts: dict[str, int], members: int) -> None:
    """Refuse a shared assignment over topics with different partition counts.

    The producer puts a key on partition ``hash(key) % n_partitions``: only with the
    same count on both topics does an event's label reach the same partition number,
    and so the same ingester and store.

    Raises
    ------
    AssignmentError
        ``members > 1`` and the topics' partition counts differ.
    """
    if members > 1 and len(set(counts.values())) > 1:
        listed = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items()))
        raise AssignmentError(
            f"kafka.assignment shares partitions between {members} ingesters, but the topics "
            f"have different partition counts ({listed}): events and their labels would "
            "reach different stores; give both topics the same number of partitions"
        )


def assign(
    consumer: Any,
    topics: list[str],
    store: Any,
    topic_ids: dict[str, str | None],
    share: tuple[int, int] = (0, 1),
) -> list[Any]:
    """Assign this ingester's partitions of ``topics``; seek new ones to their stored offset.

    Parameters
    ----------
    consumer : kafka.KafkaConsumer
        A consumer without a group.
    topics : list of str
        Topics to consume.
    store : Store
        Holds the offsets and their topic ids (:meth:`Store.offset_rows`).
    topic_ids : dict of topic -> str or None
        The topic ids this ingester works with; filled in for new topics.
    share : (member, members), default (0, 1)
        This ingester's share: partitions ``p % members == member`` (:func:`owned`).

    Returns
    -------
    list of kafka.TopicPartition
        The partitions newly assigned.

    Raises
    ------
    AssignmentError
        A shared assignment over topics with different partition counts (:func:`check_share`).
    """
    from kafka import TopicPartition

    member, members = share
    current = set(consumer.assignment())
    wanted = set(current)
    found = {t: set(consumer.partitions_for_topic(t) or ()) for t in topics}
    check_share({t: len(ps) for t, ps in found.items() if ps}, members)
    for topic in topics:
        wanted |= {TopicPartition(topic, p) for p in owned(found[topic], member, members)}
        topic_ids.setdefault(topic, cluster_topic_id(consumer, topic))
    new = sorted(wanted - current)
    if not new:
        return []
    stored = {(t, p): (o, tid) for t, p, o, tid in store.offset_rows()}
    consumer.assign(sorted(wanted))
    for tp in new:
        offset, stored_id = stored.get((tp.topic, tp.partition), (None, None))
        now_id = topic_ids.get(tp.topic)
        if offset is not None and stored_id and now_id and stored_id != now_id:
            log.warning(
                "topic %s was recreated (id %s; stored offsets are for %s): reading %s:%d "
                "from the beginning", tp.topic, now_id, stored_id, tp.topic, tp.partition,
            )  # fmt: skip
            offset = None
        if offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    log.info(
        "ingest (member %d of %d) assigned %d partition(s): %s",
        member,
        members,
        len(wanted),
        ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(wanted)),
    )
    return new


def recreated_topics(consumer: Any, topics: list[str], topic_ids: dict[str, str | None]) -> set:
    """Topics whose broker id changed since ``topic_ids`` was filled (updated in place)."""
    changed = set()
    for topic in topics:
        now_id = cluster_topic_id(consumer, topic)
        known = topic_ids.get(topic)
        if now_id is not None and known is not None and now_id != known:
            changed.add(topic)
        if now_id is not None:
            topic_ids[topic] = now_id
    return changed


def lag(consumer: Any) -> dict[tuple[str, int], int]:
    """Messages behind per assigned (topic, partition), from the last fetch's high watermark.

    Partitions whose high watermark or position is not known yet are left out.
    """
    out = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = consumer.position(tp, timeout_ms=0)
        except Exception:  # noqa: BLE001 - position unknown (not fetched yet)
            continue
        if position is not None:
            out[(tp.topic, tp.partition)] = max(0, int(high) - int(position))
    return out
