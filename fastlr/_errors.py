"""Errors about the user's data files, shared by the readers.

Holds: :class:`DataFileError` (re-exported by :mod:`fastlr.io`, its public home).
May import: the standard library only (:mod:`fastlr.io` and :mod:`fastlr._idx`
both raise it; it imports neither, so they need no import cycle).
"""

import os


class DataFileError(ValueError):
    """A user's data file cannot be used.

    ``str()`` is one line naming the file (and line/column where known) and
    the problem.
    """

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):
        # pickle (joblib, dask workers) calls the class with .args, here the joined message
        return type(self), (self.path, self.problem)


# Its public home: tracebacks and reprs say fastlr.io.DataFileError, the name the README gives
# (fastlr.io imports it from here; pickling finds it there too).
DataFileError.__module__ = "fastlr.io"
