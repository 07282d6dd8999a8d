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

from .api import loss_grad
from .estimator import LogisticRegression
from .trainer import DivergenceWarning

__version__ = "0.1.0"

__all__ = ["DivergenceWarning", "LogisticRegression", "__version__", "loss_grad"]
