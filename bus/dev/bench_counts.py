"""What a bench phase costs in calls: object-store requests (counted by SeaweedFS itself,
on its Prometheus metrics port) and Kafka records (the growth of every topic's end
offsets), so that the figures per document come from the servers, not from our client."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.settings import Settings

S3_REQUESTS = "SeaweedFS_s3_request_total"
_SAMPLE = re.compile(r'^(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def s3_requests(metrics_url: str) -> Counter[str]:
    """SeaweedFS's count of S3 requests so far, by request type (GET, PUT, HEAD...)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] == S3_REQUESTS:
            labels = dict(_LABEL.findall(match["labels"]))
            counts[labels.get("type", "?")] += int(float(match["value"]))
    return counts


async def kafka_records(settings: Settings) -> Counter[str]:
    """Records written so far to each of the bus's topics (the sum of end offsets)."""
    consumer = AIOKafkaConsumer(**settings.kafka_options, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(settings.topic_prefix)]
        partitions = [tp for t in topics for tp in _partitions(consumer, t)]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    counts: Counter[str] = Counter()
    for tp, end in ends.items():
        counts[tp.topic.removeprefix(settings.topic_prefix + ".")] += end
    return counts


def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


@dataclass
class CallCounts:
    """S3 requests and Kafka records counted around one phase (``start`` then ``stop``)."""

    settings: Settings
    metrics_url: str | None

    async def start(self) -> None:
        self._s3 = self._s3_now()
        self._kafka = await kafka_records(self.settings)

    async def stop(self, documents: int) -> dict[str, object]:
        """The counts since ``start``, in total and per document."""
        s3 = self._s3_now() - self._s3
        kafka = await kafka_records(self.settings) - self._kafka
        per = max(documents, 1)
        return {"s3_requests": dict(s3.most_common()), "kafka_records": dict(kafka.most_common()),
                "s3_per_doc": round(s3.total() / per, 2) if self.metrics_url else None,
                "kafka_per_doc": round(kafka.total() / per, 2)}

    def _s3_now(self) -> Counter[str]:
        return s3_requests(self.metrics_url) if self.metrics_url else Counter()
