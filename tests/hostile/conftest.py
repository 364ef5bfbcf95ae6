"""Fixtures shared by the hostile suites."""
import pytest

from harness import fresh_webhook


@pytest.fixture
def webhook():
    """A fresh webhook with the default flags for one test, so its peak RSS is that test's."""
    yield from fresh_webhook("fmw-hostile-one-")


@pytest.fixture
def webhook_with_ttl():
    """A fresh webhook that may serve a ConfigMap read up to 10 minutes before (--cache-ttl-ms),
    so what its cache keeps, and its bound, can be measured."""
    yield from fresh_webhook("fmw-hostile-ttl-", "--cache-ttl-ms", "600000")
