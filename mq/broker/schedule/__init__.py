"""Delayed delivery: RocketMQ's delay levels."""
