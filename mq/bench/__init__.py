"""``mq-bench``: producer and consumer benchmarks against any RocketMQ 4.x NameServer and brokers."""
