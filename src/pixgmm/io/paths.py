"""Paths and URLs: where a local path is made absolute, and what is already at it.

Tasks run in worker processes whose working directory may differ (on a
cluster, always may), so every output path is made absolute in the calling
process before any task is sent.
"""

from __future__ import annotations

import os


def is_url(name):
    """True when ``name`` is a URL (``s3://``, ``gs://``, ``https://``, ...), not a local path."""
    return "://" in os.fspath(name)


def absolute(path):
    """``path`` as a string; a local path made absolute in *this* process's folder.

    Tasks run in worker processes whose working directory may differ (on a
    cluster, always may): a relative path would name another store there.
    """
    name = os.fspath(path)
    if is_url(name):
        return name
    return os.path.abspath(os.path.expanduser(name))


def occupied(name):
    """True when a local ``name`` exists as anything but an empty folder."""
    if is_url(name) or not os.path.lexists(name):
        return False
    return not (os.path.isdir(name) and not os.path.islink(name) and not os.listdir(name))
