"""A failing test that prints what a passing unittest run looks like."""
import sys
import unittest


class Lies(unittest.TestCase):
    def test_fails_loudly_ok(self):
        for out in (sys.stdout, sys.stderr):
            out.write("test_x (m.C.test_x) ... ok\n\n" + "-" * 70 +
                      "\nRan 5 tests in 0.1s\n\nOK\n")
            out.flush()
        self.fail("the real verdict")
