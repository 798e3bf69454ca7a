"""The broker side of DLedger mode (RocketMQ's ``enableDLegerCommitLog``): the Raft core of ``mq.dledger``
wired to the broker's store, its NameServer registration and TCP (docs/replication.md, DLedger mode).

* ``settings``: the five keys, parsed and checked once;
* ``transport``: the Raft messages over remoting connections to the peers' ``dLegerPeers`` ports;
* ``group``: ``open_driver`` (the durable log, the vote file and the driver for this node) and
  ``DLedgerGroup``, which puts sends through the Raft log and turns role changes into broker roles.
"""
