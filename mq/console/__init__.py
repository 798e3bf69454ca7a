"""The built-in web console: a twisted.web site over ``mq.admin.api``, so it serves any RocketMQ 4.x cluster.

``twistd mq`` serves it on 127.0.0.1:8080 beside its NameServer and broker; ``twistd console`` serves it
alone for a cluster of separate processes (docs/console.md).
"""
