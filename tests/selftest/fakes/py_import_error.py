"""A test file that cannot be imported."""
import unittest

import module_that_does_not_exist  # noqa: F401


class Never(unittest.TestCase):
    def test_a(self):
        self.assertTrue(True)
