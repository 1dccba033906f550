"""A test file with no tests in it."""
import unittest


class Nothing(unittest.TestCase):
    pass
