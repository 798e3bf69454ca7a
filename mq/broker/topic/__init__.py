"""The broker's topic table: configured, auto-created and system topics."""
