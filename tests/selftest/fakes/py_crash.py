"""A test that kills its interpreter with SIGSEGV after one test passed."""
import os
import signal
import unittest


class Crash(unittest.TestCase):
    def test_a_passes(self):
        self.assertTrue(True)

    def test_b_crashes(self):
        os.kill(os.getpid(), signal.SIGSEGV)
