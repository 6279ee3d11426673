import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from hypothesis import HealthCheck, settings  # noqa: E402

# JIT compilation makes first calls slow; examples are bounded by count, not time.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


import ipaddress  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402


def _loopback(address):
    """Whether a socket address stays on this machine (loopback or a Unix socket)."""
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a name other than localhost
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """The suite runs without a network (CI has none): any connection from
    the test process to a non-loopback address fails the test at once, with
    the address, instead of hanging or depending on what is reachable."""
    for name in ("connect", "connect_ex"):
        original = getattr(socket.socket, name)

        def guarded(self, address, _original=original):
            if not _loopback(address):
                raise AssertionError(f"a test tried to reach the network: {address!r}")
            return _original(self, address)

        monkeypatch.setattr(socket.socket, name, guarded)
