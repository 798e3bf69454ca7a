"""The NameServer (RocketMQ's ``namesrv`` module): ``routeinfo`` holds the routing registry brokers register
with and clients read from, ``kvconfig`` the NameServer's KV table, ``processor`` answers the requests and
``service`` runs it under ``twistd namesrv`` (docs/namesrv.md)."""
