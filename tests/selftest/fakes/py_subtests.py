"""Three failing subtests in one test and one passing test: one failure."""
import unittest


class Sub(unittest.TestCase):
    def test_passes(self):
        self.assertTrue(True)

    def test_three_bad_subtests(self):
        for i in range(4):
            with self.subTest(i=i):
                self.assertEqual(i, 0)
