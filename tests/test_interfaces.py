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
from pyramid_session_multi.events import (
    SessionInvalidated,
    SessionLoaded,
    SessionRejected,
    SessionRotated,
)
from pyramid_session_multi.interfaces import (
    ISessionEvent,
    ISessionInvalidated,
    ISessionLibrary,
    ISessionLoaded,
    ISessionRejected,
    ISessionRotated,
)
from pyramid_session_multi.libraries import BUILTIN_LIBRARIES, GENERIC


def test_manager_config():
    assert verifyObject(ISessionMultiManagerConfig, SessionMultiManagerConfig())


def test_panel_recorder_is_an_observer():
    seen = []

    class Recorder(NamespaceRecorder):
        def namespace_loaded(self, namespace, session):
            seen.append((namespace, session))

        def mark(self, namespace, what):
            seen.append((namespace, what))

        def refused(self, namespace, size, limit):
            pass

    recorder = Recorder()
    assert verifyObject(ISessionMultiObserver, recorder)
    recorder.namespace_loaded("ns", None)
    recorder.namespace_rotated("ns")
    recorder.namespace_rejected("ns", "binding")
    assert seen == [("ns", None), ("ns", "rotated"), ("ns", "rejected (binding)")]


def test_every_library_adapter_is_an_isessionlibrary():
    for library in (*BUILTIN_LIBRARIES, GENERIC):
        assert verifyObject(ISessionLibrary, library)


def test_events_provide_their_interfaces():
    for event_class, interface in (
        (SessionLoaded, ISessionLoaded),
        (SessionRotated, ISessionRotated),
        (SessionInvalidated, ISessionInvalidated),
        (SessionRejected, ISessionRejected),
    ):
        event = event_class(None, "ns", None)
        assert verifyObject(interface, event)
        assert ISessionEvent.providedBy(event)


def test_csrf_policy():
    assert verifyObject(ICSRFStoragePolicy, NamespaceCSRFStoragePolicy("ns"))
