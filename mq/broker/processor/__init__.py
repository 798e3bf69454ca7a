"""Request processors: one per group of request codes, as RocketMQ's broker.processor package splits them."""
