import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# One profile for the whole suite: no deadline (the first call of an op can be slow), and
# derandomised on CI so that a red run can be reproduced exactly.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="session")
def torch_on_one_thread():
    """The PyTorch oracles run on tiny tensors: torch's thread pool only adds overhead, which grows
    to seconds per test when other processes share the cores. Test modules are imported by now,
    so torch is in sys.modules exactly when some test uses it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    yield
