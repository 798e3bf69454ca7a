"""Long polling: pulls held until a message arrives or their suspend time ends."""
