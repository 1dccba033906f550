"""setUpClass raises: its tests never run, and that is a failure."""
import unittest


class Broken(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise OSError("no server")

    def test_a(self):
        self.assertTrue(True)
