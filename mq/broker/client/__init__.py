"""Who is connected: producer and consumer channels, broker-to-client calls, rebalance locks."""
