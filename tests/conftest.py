import os

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
