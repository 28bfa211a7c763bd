#!/usr/bin/env python3
"""An independent Kafka client (confluent-kafka, with its own bundled librdkafka), for
`scripts/services.sh check` and as the reference of Tests/TapeKafkaTests.

  kafka_client.py check   --bootstrap HOST:PORT
      create a topic, produce one record, consume it back in a group; exit 1 if it does not come back.
  kafka_client.py produce --bootstrap HOST:PORT --topic T --count N [--keys K]
      produce N records (key "key-<i mod K>", value "value-<i>", headers source=python and
      index=<i>, timestamp 1700000000000 + i ms); print one JSON line per delivered record
      (what was sent plus the partition and offset the broker gave it).
  kafka_client.py consume --bootstrap HOST:PORT --topic T --count N --group G
      consume N records in group G from the beginning; print one JSON line per record:
      partition, offset, key, value (latin-1 text, so any byte round-trips), headers, timestamp.
"""
import argparse
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_SECONDS = 30


def text(data):
    return None if data is None else data.decode("latin-1")


def record_json(message):
    kind, timestamp = message.timestamp()
    return {
        "partition": message.partition(),
        "offset": message.offset(),
        "key": text(message.key()),
        "value": text(message.value()),
        "headers": [[name, text(value)] for name, value in (message.headers() or [])],
        "timestamp": timestamp,
        "timestamp_type": kind,
    }


def consume(bootstrap, topic, count, group):
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "max.poll.interval.ms": 10000,
    })
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            records.append(record_json(message))
    finally:
        consumer.close()
    return records


def produce(bootstrap, topic, count, keys):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    delivered = []
    failures = []

    def report(error, message):
        if error is not None:
            failures.append(str(error))
        else:
            delivered.append(record_json(message))

    for index in range(count):
        producer.produce(topic, key=f"key-{index % keys}".encode(), value=f"value-{index}".encode(),
                         headers=[("source", b"python"), ("index", str(index).encode())],
                         timestamp=1_700_000_000_000 + index, on_delivery=report)
    left = producer.flush(TIMEOUT_SECONDS)
    if left or failures:
        sys.exit(f"kafka_client: {left} records not delivered, failures: {failures[:3]}")
    return delivered


def create_topic(bootstrap, topic, partitions):
    # log_level 4: without it, closing the admin client logs an informational BGQUEUE line.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(TIMEOUT_SECONDS)


def check(bootstrap):
    topic = f"tape-services-check-{os.getpid()}-{int(time.time())}"
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 1, 1)
    records = consume(bootstrap, topic, 1, topic)
    if [(r["key"], r["value"]) for r in records] != [("key-0", "value-0")]:
        sys.exit(f"kafka_client: check read back {records}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "produce", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--group")
    arguments = parser.parse_args()
    if arguments.command == "check":
        check(arguments.bootstrap)
        return
    if not arguments.topic:
        parser.error("--topic is required")
    if arguments.command == "produce":
        records = produce(arguments.bootstrap, arguments.topic, arguments.count, arguments.keys)
    else:
        records = consume(arguments.bootstrap, arguments.topic, arguments.count, arguments.group or arguments.topic)
    for record in records:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
