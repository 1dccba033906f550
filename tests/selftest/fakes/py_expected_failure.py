"""An expected failure and an unexpected success: neither is a pass."""
import unittest


class Expected(unittest.TestCase):
    def test_passes(self):
        self.assertTrue(True)

    @unittest.expectedFailure
    def test_known_broken(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_unexpectedly_fine(self):
        self.assertEqual(1, 1)
