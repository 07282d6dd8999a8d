"""``stacklevel`` for fastlr's warnings: the first frame outside the fastlr package.

A warning about a fit (ConvergenceWarning, DivergenceWarning) is raised deep
in the trainer, and how deep depends on the path (the estimator's ``fit``,
``partial_fit``, the Dask adapter, the command line). A fixed ``stacklevel``
then points at one of fastlr's own lines; :func:`user_stacklevel` counts the
frames instead, so the warning names the user's call, as scikit-learn's do.

Imports only the standard library.
"""

import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel():
    """The ``stacklevel`` that makes ``warnings.warn``, called by our caller, name user code.

    Level 1 is the function that calls ``warnings.warn`` (the caller of this
    function); each enclosing frame whose file lies inside the fastlr package
    adds one. Frames of other libraries (scikit-learn's checks, joblib) count
    as user code.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level
