"""0.4's module path of the panel, kept for imports written against 0.4."""

from ..panel import SessionMultiDebugPanel

__all__ = ["SessionMultiDebugPanel"]
