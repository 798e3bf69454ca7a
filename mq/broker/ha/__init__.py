"""Master/slave replication: the master's HA port, the slave's stream and config synchronisation."""
