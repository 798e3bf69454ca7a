"""``--acl``/``--acl-file`` on ``twistd broker`` and ``twistd mq``, and the start refused for a bad ACL setup."""

from __future__ import annotations

import pytest

from mq.acl.store import AclStore
from mq.broker.tap import Options as BrokerOptions
from mq.standalone import Options as MqOptions

GOOD = "accounts:\n  - {accessKey: goodAccount, secretKey: goodSecret1, admin: true}\n"


@pytest.fixture
def acl_file(tmp_path):
    path = tmp_path / "acl.yml"
    path.write_text(GOOD)
    return path


def signing(tmp_path, access_key="goodAccount", secret_key="goodSecret1"):
    """``--config`` with the broker's own account (``twistd mq --acl`` signs its registrations with it)."""
    conf = tmp_path / f"{access_key}-{secret_key}.conf"
    conf.write_text(f"accessKey={access_key}\nsecretKey={secret_key}\n")
    return ["--config", str(conf)]


@pytest.mark.parametrize("options, config", [(BrokerOptions, "config"), (MqOptions, "broker_config")])
def test_acl_flag_and_file(tmp_path, acl_file, options, config):
    opts = options()
    opts.parseOptions(["--acl", "--acl-file", str(acl_file), "--store", str(tmp_path / "s"), *signing(tmp_path)])
    broker = getattr(opts, config)
    assert broker.acl_enable and broker.acl_file == str(acl_file)
    off = options()
    off.parseOptions(["--store", str(tmp_path / "s")])
    assert not getattr(off, config).acl_enable


@pytest.mark.parametrize("options", [BrokerOptions, MqOptions])
def test_bad_acl_setups_stop_the_start_with_one_line(tmp_path, acl_file, options, monkeypatch):
    monkeypatch.delenv("ROCKETMQ_HOME", raising=False)
    with pytest.raises(SystemExit, match="rocketmqHome"):
        options().parseOptions(["--acl", "--store", str(tmp_path / "s")])
    acl_file.write_text("accounts: [\n")
    with pytest.raises(SystemExit, match="acl.yml: not YAML"):
        options().parseOptions(["--acl", "--acl-file", str(acl_file), "--store", str(tmp_path / "s")])
    # With ACL off, the file is not read at all.
    options().parseOptions(["--acl-file", str(acl_file), "--store", str(tmp_path / "s")])


def test_broker_account_must_be_whole(tmp_path):
    conf = tmp_path / "broker.conf"
    conf.write_text("accessKey=brokerAccount\n")
    with pytest.raises(SystemExit, match="broker: an access key needs a secret key"):  # one line, exit 1
        BrokerOptions().parseOptions(["--config", str(conf), "--store", str(tmp_path / "s")])
    conf.write_text("accessKey=brokerAccount\nsecretKey=brokerSecret\nrocketmqHome=/opt/rmq\naclEnable=false\n")
    opts = BrokerOptions()
    opts.parseOptions(["--config", str(conf), "--store", str(tmp_path / "s")])
    assert opts.config.rocketmq_home == "/opt/rmq" and opts.config.secret_key == "brokerSecret"
    assert opts.config.to_properties()["secretKey"] == "******"


def test_mq_with_acl_checks_its_nameservers_writes_with_the_brokers_admin_account(tmp_path, acl_file, monkeypatch):
    """Left open, the NameServer of ``twistd mq --acl`` let anyone register a broker that took over the routes.
    The check reads the ACL files once (an 8 MiB file takes seconds to parse), not once per service."""
    acl_file.write_text(GOOD + "  - {accessKey: userAccount, secretKey: userSecret1}\n")
    loads = []
    real_load = AclStore.load
    monkeypatch.setattr(AclStore, "load", lambda store: loads.append(store) or real_load(store))
    opts = MqOptions()
    opts.parseOptions(["--acl", "--acl-file", str(acl_file), "--store", str(tmp_path / "s"), *signing(tmp_path)])
    assert len(loads) == 1
    assert opts.namesrv_config.acl_enable and opts.namesrv_config.acl_file == str(acl_file)
    for refused in ([], signing(tmp_path, "userAccount", "userSecret1"), signing(tmp_path, "goodAccount", "wrong123"),
                    signing(tmp_path, "noSuchAccount", "goodSecret1")):
        with pytest.raises(SystemExit, match="set accessKey and secretKey \\(an admin account of the ACL file\\)"):
            MqOptions().parseOptions(["--acl", "--acl-file", str(acl_file), "--store", str(tmp_path / "s"), *refused])
    off = MqOptions()
    off.parseOptions(["--store", str(tmp_path / "s")])
    assert not off.namesrv_config.acl_enable
