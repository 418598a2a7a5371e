"""The SessionMulti panel: ``debugtoolbar.includes = pyramid_session_multi.debugtoolbar``."""

from typing import Any

from .panel import SessionMultiDebugPanel


def includeme(config: Any) -> None:
    """Add the panel; ``config`` is the toolbar's own configurator."""
    config.add_debugtoolbar_panel(SessionMultiDebugPanel)


__all__ = ["SessionMultiDebugPanel", "includeme"]
