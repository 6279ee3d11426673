"""The suite-wide network guard of tests/conftest.py."""

import socket
import urllib.request

import pytest


def test_outside_addresses_are_refused():
    with pytest.raises(AssertionError, match="reach the network: \\('203.0.113.5', 80\\)"):
        socket.create_connection(("203.0.113.5", 80), timeout=1)
    with pytest.raises(Exception, match="reach the network"):
        urllib.request.urlopen("http://192.0.2.1/", timeout=1)


def test_loopback_stays_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        with socket.create_connection(server.getsockname(), timeout=5):
            conn, _ = server.accept()
            conn.close()
    finally:
        server.close()
