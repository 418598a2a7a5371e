"""The deploy audit's names: the id of every finding and the settings it reads.

They sit at the bottom of the package so that the settings can refuse an id
no check has, or a logout path that is no path, without importing the audit
itself (:mod:`pyramid_session_multi.checks`, which imports from everything).
"""

__all__ = ["CHECK_IDS", "LOGOUT_PATH_SETTING", "SILENCE_SETTING"]

#: The setting listing the ids to silence.
SILENCE_SETTING = "session_multi.check.silence"

#: The setting naming the URL path where the application logs out.
LOGOUT_PATH_SETTING = "session_multi.check.logout_path"

#: Every id a finding has (what ``session_multi.check.silence`` may name).
CHECK_IDS = frozenset(
    ["psm.E001", "psm.E002", "psm.I001", "psm.I002", "psm.I003"]
    + [f"psm.W{number:03d}" for number in range(1, 17)]
)
