"""A Redis master dies under a running application: the cluster's, then the sentinels'.

One application, never restarted, keeps namespaces on a Redis Cluster (3
masters, 3 replicas), on a Sentinel-watched master, on one Redis server and
in a cookie.  Sessions are written and replicated (``WAIT``), a master is
killed, and until its replica is promoted:

- requests touching only the other namespaces keep succeeding (a client
  reads them all the while, from another thread);
- requests touching the failing namespace fail as a store outage does: the
  error names the namespace, its cookie is not deleted, no key is removed;
- on the cluster, sessions on the masters that stay up are served throughout;

then every replicated session is served again, and new sessions are written
on the promoted replica.  The time from the kill to the first session served
again is printed and recorded (``--junitxml`` keeps it): failure detection is
tuned to one second here (see :mod:`tests.support.redis_topologies`).
"""

import pickle
import time

import pytest
import webtest
from pyramid_session_redis.util import create_unique_session_id

from pyramid_session_multi.stores.redis import redis_client_callable
from tests.support.apps import set_cookie_names
from tests.support.redis_topologies import (
    Bystander,
    LocalCluster,
    LocalSentinels,
    client,
    cluster_keys,
    key_in_slots,
    running,
    slot_owner,
    topologies_app,
)

#: Seconds a failover may take before the test gives up: a hang guard, not a target.
HANG_GUARD = 90


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running(LocalCluster(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory):
    yield from running(LocalSentinels(tmp_path_factory.mktemp("sentinels")))


@pytest.fixture(scope="module")
def app(cluster, sentinels, redis_url):
    """The one running application of the module."""
    return topologies_app(cluster, sentinels, redis_url)


def write_sessions(app, namespace, count, prefix):
    """``count`` new clients, each with a session holding its own value:
    ``[(client, value, session id)]``."""
    written = []
    for index in range(count):
        client_app = webtest.TestApp(app)
        value = f"{prefix} {index}"
        response = client_app.post(f"/t/{namespace}", {"value": value})
        written.append((client_app, value, response.json["id"]))
    return written


def ride_out(probe, namespace, value, unaffected=()):
    """Read ``probe``'s session until it is served again; check every failure
    on the way is an outage of ``namespace`` that deleted nothing, and that
    each of ``unaffected`` (sessions of ``namespace`` elsewhere: ``(client,
    value)``) is served all the while.  Returns (seconds until served, the
    failures' error names)."""
    cookie = probe.cookies[namespace]
    started = time.monotonic()
    failures = []
    while True:
        assert time.monotonic() - started < HANG_GUARD, f"{namespace} never came back"
        for other, other_value in unaffected:
            assert other.get(f"/t/{namespace}").json["value"] == other_value
        response = probe.get(f"/t/{namespace}", status="*")
        if response.status_int == 200:
            assert response.json["value"] == value  # never an empty session in its place
            return time.monotonic() - started, failures
        assert response.status_int == 503, response
        assert any(f"namespace {namespace!r}" in note for note in response.json["notes"])
        assert namespace not in set_cookie_names(response), "the outage deleted the cookie"
        assert probe.cookies[namespace] == cookie
        failures.append(response.json["error"])
        time.sleep(0.05)


def report(record_property, name, recovery, failures, bystander, killed_at):
    during = [t for t in bystander.served if killed_at <= t <= killed_at + recovery]
    record_property(f"{name}_seconds_to_recovery", round(recovery, 2))
    record_property(f"{name}_failed_requests", len(failures))
    print(
        f"\n{name}: served again {recovery:.2f} s after the master was killed; "
        f"{len(failures)} requests to it failed meanwhile ({', '.join(sorted(set(failures)))}); "
        f"{len(during)} requests to the other namespaces succeeded meanwhile"
    )
    return during


def test_a_cluster_master_fails_over_under_the_running_app(app, cluster, record_property):
    sessions = write_sessions(app, "cluster", 40, "cluster session")
    owners = [slot_owner(cluster, session_id) for _, _, session_id in sessions]
    assert set(owners) == set(cluster.masters()), "the sessions did not spread over the masters"
    cluster.wait_replicated()
    victim = max(set(owners), key=owners.count)
    replica = cluster.replica_of(victim)
    before = cluster_keys(cluster)
    affected = [s for s, owner in zip(sessions, owners, strict=True) if owner == victim]
    # one session on each master that stays up: served throughout
    unaffected = {
        owner: s[:2] for s, owner in zip(sessions, owners, strict=True) if owner != victim
    }
    bystander = Bystander(app, ["single", "signed", "sentinel"])
    bystander.start()
    # a process that makes no request during the failover: its map of slots goes stale
    idle = redis_client_callable(cluster_nodes=cluster.nodes, socket_timeout=1)
    idle().ping(target_nodes="all")
    victim_slots = cluster.masters()[victim]["slots"]

    killed_at = time.monotonic()
    cluster.kill(victim)
    probe, value, _ = affected[0]
    recovery, failures = ride_out(probe, "cluster", value, list(unaffected.values()))
    time.sleep(0.2)  # the bystander's requests right after, too
    bystander.stop()

    during = report(record_property, "cluster", recovery, failures, bystander, killed_at)
    assert bystander.failures == []
    assert during, "no request to the other namespaces was made during the failover"
    after = {port: sorted(keys) for port, keys in cluster_keys(cluster).items()}
    before = {port: sorted(keys) for port, keys in before.items()}
    assert replica in after, "the replica was not promoted"
    assert after.pop(replica) == before.pop(victim), "a replicated key was lost"
    assert after == before, "keys changed on the masters that stayed up"
    for client_app, value, _ in sessions:
        assert client_app.get("/t/cluster").json["value"] == value
    written = write_sessions(app, "cluster", 30, "after the failover")
    for client_app, value, _ in written:
        assert client_app.get("/t/cluster").json["value"] == value
    on_promoted = [s for s in written if slot_owner(cluster, s[2]) == replica]
    assert on_promoted, "no new session was written on the promoted replica"
    with client(replica) as promoted:
        assert all(promoted.exists(session_id) for _, _, session_id in on_promoted)
    # its first new id in the failed-over slots finds the promoted replica at once
    new_id = key_in_slots(victim_slots, prefix=f"idle-{time.monotonic_ns()}")
    try:
        assert create_unique_session_id(idle(), 600, pickle.dumps, lambda: new_id) == new_id
    finally:
        idle.close()
    with client(replica) as promoted:
        assert promoted.exists(new_id)


def test_the_sentinels_master_fails_over_under_the_running_app(app, sentinels, record_property):
    sessions = write_sessions(app, "sentinel", 20, "sentinel session")
    sentinels.wait_replicated()
    with client(sentinels.master_port) as master:
        before = sorted(master.keys())
    bystander = Bystander(app, ["single", "signed", "cluster"])
    bystander.start()

    killed_at = time.monotonic()
    sentinels.kill(sentinels.master_port)
    probe, value, _ = sessions[0]
    recovery, failures = ride_out(probe, "sentinel", value)
    time.sleep(0.2)
    bystander.stop()

    during = report(record_property, "sentinel", recovery, failures, bystander, killed_at)
    assert bystander.failures == []
    assert during, "no request to the other namespaces was made during the failover"
    assert sentinels.master_address()[1] == sentinels.replica_port, "the replica was not promoted"
    with client(sentinels.replica_port) as promoted:
        assert sorted(promoted.keys()) == before, "a replicated key was lost"
    for client_app, value, _ in sessions:
        assert client_app.get("/t/sentinel").json["value"] == value
    written = write_sessions(app, "sentinel", 5, "after the failover")
    with client(sentinels.replica_port) as promoted:
        assert all(promoted.exists(session_id) for _, _, session_id in written)
    for client_app, value, _ in written:
        assert client_app.get("/t/sentinel").json["value"] == value
