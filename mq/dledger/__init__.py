"""Raft replication for a broker group (RocketMQ's DLedger mode), built in layers that can be trusted apart.

* ``messages``: the Raft messages, log entries and the outputs of a step, as attrs classes.
* ``log``: the log the core reads and edits (``RaftLog``: terms as runs, bodies cached up to a byte budget,
  older ones read back from the store; ``MemoryLog`` keeps every body).
* ``node``: the Raft core, a pure state machine: messages and clock readings in, outputs out; no reactor,
  no sockets, no files, no global randomness. The broker wires it to the store and to TCP; the tests wire it
  to a simulated network (tests/dledger/simulation.py).
* ``entry``: the on-disk and on-wire entry layout (DLedger's), ``store``: the durable log (streamed recovery,
  retention with a base record, full-disk undo) and vote metadata,
  ``codec``: the messages as RocketMQ remoting commands.

docs/dledger.md describes the protocol, the defaults and their reasons, and the simulation.
"""
