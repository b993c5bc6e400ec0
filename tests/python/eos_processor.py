"""An exactly-once consume-transform-produce processor for the Runnel tests.

    python eos_processor.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID

Reads INPUT as a member of GROUP (static membership, so a restarted process
takes its predecessor's place without waiting for a session timeout), and
for every input record writes ``out-<value>`` with the same key to OUTPUT,
in transactions of up to ``EOS_BATCH`` records that also commit the input
offsets (``send_offsets_to_transaction``). It prints ``open <records>`` once a
transaction's records are written (then sleeps ``EOS_PAUSE_MS`` before
committing) and ``committed <total records so far in this process>`` after
each commit, so the test can SIGKILL it inside an open transaction.

It runs until killed; any error it cannot recover from ends it with status 1.
"""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer


def main() -> int:
    bootstrap, input_topic, output_topic, group, transactional_id = sys.argv[1:6]
    batch = int(os.environ.get("EOS_BATCH", "25"))
    pause = int(os.environ.get("EOS_PAUSE_MS", "20")) / 1000.0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.instance.id": f"{group}-member",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 10000,
            "linger.ms": 1,
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([input_topic])
    total = 0
    while True:
        messages = consumer.consume(num_messages=batch, timeout=0.5)
        messages = [m for m in messages if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        for m in messages:
            producer.produce(output_topic, key=m.key(), value=b"out-" + m.value())
        producer.flush(30)
        print(f"open {len(messages)}", flush=True)
        time.sleep(pause)
        positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        try:
            producer.commit_transaction(30)
        except KafkaException as e:
            if e.args[0].txn_requires_abort():
                # Rewind to the committed offsets and redo the work in a new transaction.
                producer.abort_transaction(30)
                for tp in consumer.committed(consumer.assignment(), 30):
                    if tp.offset < 0:
                        tp.offset = OFFSET_BEGINNING
                    consumer.seek(tp)
                continue
            raise
        total += len(messages)
        print(f"committed {total}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
