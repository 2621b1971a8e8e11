"""The app fixtures (generated catalog + real GSE781 on both backends) live in tests/app_fixtures.py."""

from tests.app_fixtures import *  # noqa: F403
