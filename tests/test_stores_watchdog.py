"""The watchdog: one thread shuts down the socket of a call past its deadline,
and leaves alone the socket of a call that ended in time.

A socket pair stands for a driver's connection: its peer never answers."""

import socket
import threading

import pytest

from pyramid_session_multi.stores.watchdog import Watchdog

#: Seconds a wait may take before a test gives up: a hang guard.
HANG_GUARD = 30


@pytest.fixture
def pair():
    ours, peer = socket.socketpair()
    ours.settimeout(HANG_GUARD)
    yield ours, peer
    ours.close()
    peer.close()


def test_a_call_past_its_deadline_has_its_socket_shut_down(pair):
    ours, _peer = pair
    watchdog = Watchdog()
    token = watchdog.arm(ours.fileno(), 0.2)
    assert ours.recv(1) == b""  # the wait ends: the socket was shut down, not closed
    assert watchdog.fired(token)
    assert watchdog.disarm(token) is True
    assert watchdog.shutdowns == 1
    assert ours.fileno() >= 0  # the descriptor is still the caller's to close


def test_a_call_ended_in_time_keeps_its_socket(pair):
    ours, peer = pair
    watchdog = Watchdog()
    token = watchdog.arm(ours.fileno(), 0.2)
    assert watchdog.disarm(token) is False
    # a later call's deadline passes: the earlier one's socket is not touched
    other, other_peer = socket.socketpair()
    try:
        later = watchdog.arm(other.fileno(), 0.2)
        other.settimeout(HANG_GUARD)
        assert other.recv(1) == b""
        assert watchdog.disarm(later) is True
    finally:
        other.close()
        other_peer.close()
    peer.sendall(b"x")
    assert ours.recv(1) == b"x"
    assert watchdog.shutdowns == 1


def watchers():
    return sum(thread.name == "session-multi-watchdog" for thread in threading.enumerate())


def test_one_thread_watches_every_deadline(pair):
    ours, _peer = pair
    watchdog = Watchdog()
    before = watchers()
    tokens = [watchdog.arm(ours.fileno(), 600) for _ in range(50)]
    assert watchers() == before + 1
    assert [watchdog.disarm(token) for token in tokens] == [False] * 50
    assert watchdog.shutdowns == 0
