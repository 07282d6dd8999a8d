"""fastlr: logistic regression trained at the speed of memory.

Public names
------------
LogisticRegression
    scikit-learn compatible estimator.
loss_grad
    Mean loss and gradient of a logistic model in one pass over X.
DivergenceWarning
    Warned when gradient descent or SGD diverges.
"""

# Before anything can launch a Numba parallel region: make the TBB layer loadable.
from ._threads import preload_tbb as _preload_tbb

_preload_tbb()

from .api import loss_grad  # noqa: E402
from .estimator import LogisticRegression  # noqa: E402
from .trainer import DivergenceWarning  # noqa: E402

__version__ = "0.1.0"

__all__ = ["DivergenceWarning", "LogisticRegression", "__version__", "loss_grad"]
