"""`tinygrad_cnn.nn.functional`, where PyTorch users import it from (`import ... as F`): the same
functions as tinygrad_cnn.functional."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
