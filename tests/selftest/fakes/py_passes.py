"""Two tests that pass."""
import unittest


class Passes(unittest.TestCase):
    def test_one(self):
        self.assertEqual(1 + 1, 2)

    def test_two(self):
        self.assertIn("b", "abc")
