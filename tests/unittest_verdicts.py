"""tests/unittest_verdicts.py - runs one unittest module for tests/run.sh.

Usage: python3 unittest_verdicts.py MODULE VERDICTS_FILE (MODULE is imported
from the current directory). unittest's verbose report goes to stderr as
usual; the verdict of each test goes to VERDICTS_FILE, one line each:

    pass TEST_ID
    fail TEST_ID: WHY
    skip TEST_ID: REASON

The file is written only once the run is over, so a run that dies on the way
leaves none, and run.sh reads it rather than unittest's text, which the
tests' own output can garble. A test fails if it or any of its subtests
failed or raised; an expected failure and an unexpected success fail too (a
test that is known to be broken is not a pass). Errors outside a test
(import, setUpClass, tearDownModule) are failures under their own name.
Exit status 0 only when at least one test ran and none failed.
"""
import os
import sys
import unittest


class VerdictResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verdicts = {}   # test id -> (kind, text), in the order run

    def _verdict(self, test, kind, text=""):
        tid = test.id()
        if self.verdicts.get(tid, ("",))[0] == "fail":
            return           # a failure is never undone by what follows
        self.verdicts[tid] = (kind, " ".join(str(text).split()))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._verdict(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._verdict(test, "fail", "FAIL: %s" % err[1])

    def addError(self, test, err):
        super().addError(test, err)
        self._verdict(test, "fail", "ERROR: %s: %s" % (err[0].__name__, err[1]))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._verdict(test, "fail", "subtest %s: %s" % (subtest._subDescription(), err[1]))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._verdict(test, "skip", reason or "(no reason given)")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._verdict(test, "fail", "expected failure: a known-broken test is not a pass")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._verdict(test, "fail", "unexpected success of an expectedFailure test")


def main():
    module, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.getcwd())
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                     resultclass=VerdictResult)
    result = runner.run(suite)
    lines = []
    for tid, (kind, text) in result.verdicts.items():
        lines.append("%s %s: %s\n" % (kind, tid, text) if text else "%s %s\n" % (kind, tid))
    with open(out + ".tmp", "w") as f:
        f.writelines(lines)
    os.rename(out + ".tmp", out)
    kinds = [k for k, _ in result.verdicts.values()]
    sys.exit(0 if kinds and "fail" not in kinds else 1)


if __name__ == "__main__":
    main()
