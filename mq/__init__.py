"""mq: Apache RocketMQ 4.x, rebuilt in Python on Twisted, wire-compatible with the official clients."""

__version__ = "0.1.0"
