"""The broker (RocketMQ's ``broker`` module): ``service`` wires a store to the remoting server; requests are
served by ``processor``; ``client``, ``offset``, ``topic`` and ``subscription`` keep the shared tables;
``longpolling``, ``transaction``, ``schedule``, ``ha`` and ``dledger`` are the broker's background work and
replication; ``stats`` counts and exports what operators watch (docs/broker.md)."""
