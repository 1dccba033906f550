"""One test passes; three skip, each for its own reason."""
import unittest


class Skips(unittest.TestCase):
    def test_passes(self):
        self.assertTrue(True)

    def test_skips_inside(self):
        self.skipTest("needs a small tmpfs")


@unittest.skipUnless(False, "needs root")
class SkippedClass(unittest.TestCase):
    def test_a(self):
        self.fail("a skipped class ran")

    def test_b(self):
        self.fail("a skipped class ran")
