"""The implementations provide the interfaces they claim."""

from pyramid.interfaces import ICSRFStoragePolicy
from zope.interface.verify import verifyObject

from pyramid_session_multi import (
    ISessionMultiManagerConfig,
    ISessionMultiObserver,
    NamespaceCSRFStoragePolicy,
    SessionMultiManagerConfig,
)
from pyramid_session_multi.debugtoolbar.panel import NamespaceRecorder


def test_manager_config():
    assert verifyObject(ISessionMultiManagerConfig, SessionMultiManagerConfig())


def test_panel_recorder_is_an_observer():
    seen = []
    recorder = NamespaceRecorder(
        lambda namespace, session: seen.append((namespace, session)), lambda *refused: None
    )
    assert verifyObject(ISessionMultiObserver, recorder)
    recorder.namespace_loaded("ns", None)
    assert seen == [("ns", None)]


def test_csrf_policy():
    assert verifyObject(ICSRFStoragePolicy, NamespaceCSRFStoragePolicy("ns"))
