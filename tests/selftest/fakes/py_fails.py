"""One test passes, one fails, one raises."""
import unittest


class Fails(unittest.TestCase):
    def test_passes(self):
        self.assertTrue(True)

    def test_fails(self):
        self.assertEqual(1 + 1, 3)

    def test_raises(self):
        raise KeyError("boom")
