from tests.client.conftest import cluster, unique  # noqa: F401 - the shared NameServer and brokers
