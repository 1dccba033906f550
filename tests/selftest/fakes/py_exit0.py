"""A test that ends its interpreter with status 0 half-way through the run."""
import os
import unittest


class Exit(unittest.TestCase):
    def test_a_passes(self):
        self.assertTrue(True)

    def test_b_exits(self):
        os._exit(0)

    def test_c_never_runs(self):
        self.assertTrue(True)
