"""The configuration of the HA chaos cluster: etcd's flags and each Patroni node's file.

The timings are the failover's: Patroni checks every second (loop_wait), and a primary
whose PostgreSQL crashed hands over at once (primary_start_timeout 0) rather than
restarting in place, which synchronous_mode makes safe: only the synchronous standby,
which has every acknowledged commit, may be promoted. docs/scaling.md explains each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCOPE = "checkin-gateway"

DCS: dict[str, Any] = {
    "ttl": 20,  # Patroni's minimum: the leader key outlives a Patroni that died
    "loop_wait": 1,
    "retry_timeout": 5,
    "primary_start_timeout": 0,
    "synchronous_mode": True,
    "synchronous_mode_strict": False,  # alone, the primary goes on (see docs/scaling.md)
    "failsafe_mode": True,  # etcd lost: the primary stays while it sees the other node
    "maximum_lag_on_failover": 1048576,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            "wal_level": "replica",
            "hot_standby": "on",
            "wal_log_hints": "on",  # pg_rewind brings the old primary back as a standby
            "max_wal_senders": 5,
            "max_replication_slots": 5,
            "max_connections": 100,
            "synchronous_commit": "on",
        },
    },
}


def etcd_args(data: Path, client_port: int, peer_port: int) -> list[str]:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return [
        *("--name", "etcd0", "--data-dir", str(data)),
        *("--listen-client-urls", client, "--advertise-client-urls", client),
        *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
        *("--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new"),
        *("--log-level", "warn"),
    ]


def patroni_config(
    name: str, pg_port: int, api_port: int, node_dir: Path, etcd_port: int, pg_bin: Path
) -> dict[str, Any]:
    trust = ["local all all trust", "host all all 127.0.0.1/32 trust"]
    trust.append("host replication all 127.0.0.1/32 trust")
    return {
        "scope": SCOPE,
        "name": name,
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{api_port}",
            "connect_address": f"127.0.0.1:{api_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
        "bootstrap": {
            "dcs": DCS,
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth": "trust"}],
            "pg_hba": trust,
        },
        "postgresql": {
            "listen": f"127.0.0.1:{pg_port}",
            "connect_address": f"127.0.0.1:{pg_port}",
            "data_dir": str(node_dir / "data"),
            "bin_dir": str(pg_bin),
            "pgpass": str(node_dir / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "replicator"},
                "rewind": {"username": "postgres"},
            },
            "pg_hba": trust,
            "parameters": {"unix_socket_directories": str(node_dir)},
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }


def patroni_yaml(config: dict[str, Any]) -> str:
    """The node's patroni.yml: JSON is YAML, and needs no YAML library here."""
    return json.dumps(config, indent=2)
