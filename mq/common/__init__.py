"""Shared model: message layout, route data, constants and JSON helpers (RocketMQ's ``common`` module)."""
