"""Access control (RocketMQ's ACL 1.0, "plain ACL"): request signing, accounts and permissions."""
