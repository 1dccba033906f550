"""tests/selftest/test_run_sh.py - the self-test of tests/run.sh.

Each test puts one or a few fakes (tests/selftest/fakes) in a fresh
directory, runs the runner on it alone (UNIT_DIR, INTEG_DIR) and checks its
exit status, its closing line and the line it prints for the fake. The unit
fakes are real Check programs built from check_fake.c with
tests/unit/unit_skip.h, and shell scripts that print what a Check program
prints and then misbehave; the integration fakes are unittest files.
`make test` runs this before the suite: a runner that could report a broken
file as passing would make every later verdict worthless.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
FAKES = os.path.join(HERE, "fakes")
CHECK_MODES = ("skips", "fails", "skip_then_fails", "crash")


class RunnerVerdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.built = tempfile.mkdtemp(prefix="selftest-check.")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "check"], check=True,
                               capture_output=True, text=True, timeout=30).stdout.split()
        for mode in CHECK_MODES:
            subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                            "-I", TOP, '-DFAKE_MODE="%s"' % mode, "-o", os.path.join(cls.built, mode),
                            os.path.join(FAKES, "check_fake.c")] + flags, check=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.built)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="selftest-run.")
        self.addCleanup(shutil.rmtree, self.dir)

    def runner(self, unit=(), py=(), env=None, empty_unit_dir=False):
        """Runs tests/run.sh on the named fakes: "check:MODE" (a Check
        program), "unit_x.sh" or "py_x.py"; each becomes test_<name>. A part
        with no fakes is left out (its directory variable is "") unless
        empty_unit_dir asks for an empty unit directory."""
        udir, pdir = os.path.join(self.dir, "unit"), os.path.join(self.dir, "py")
        os.mkdir(udir)
        os.mkdir(pdir)
        for fake in unit:
            if fake.startswith("check:"):
                src, name = os.path.join(self.built, fake[6:]), fake[6:]
            else:
                src, name = os.path.join(FAKES, fake), fake[5:-3]
            shutil.copy(src, os.path.join(udir, "test_" + name))
        for fake in py:
            shutil.copy(os.path.join(FAKES, fake), os.path.join(pdir, "test_" + fake[3:]))
        run_env = {k: v for k, v in os.environ.items()
                   if k not in ("SANITIZE_LOG_DIR", "UNIT_TIMEOUT", "INTEG_TIMEOUT")}
        run_env.update(UNIT_DIR=udir if unit or empty_unit_dir else "", INTEG_DIR=pdir if py else "")
        run_env.update(env or {})
        p = subprocess.run(["bash", os.path.join(TOP, "tests", "run.sh")], env=run_env,
                           capture_output=True, text=True, timeout=120)
        self.out = p.stdout
        return p.returncode, p.stdout.splitlines()

    def verdict(self, rc, lines, want_rc, closing, file_lines=(), present=()):
        """The exit status, the exact closing line, each file's line
        ("test_x: P passed, F failed, S skipped" and, after " - ", why) and
        other lines that must be there."""
        msg = "runner output:\n" + self.out
        self.assertEqual(lines[-1], closing, msg)
        self.assertEqual(rc, want_rc, msg)
        for name, counts, why in file_lines:
            pat = r"^%s: %s in \d+s%s$" % (re.escape(name), re.escape(counts),
                                           " - " + re.escape(why) if why else "")
            self.assertTrue(any(re.match(pat, ln) for ln in lines), "no line %r\n%s" % (pat, msg))
        for want in present:
            self.assertIn(want, lines, msg)

    # Check programs and what pretends to be one.

    def test_unit_skips_counted_with_reasons(self):
        rc, lines = self.runner(unit=["check:skips"])
        self.verdict(rc, lines, 0, "3 passed, 0 failed, 2 skipped",
                     [("test_skips", "3 passed, 0 failed, 2 skipped", "")],
                     ["skipped: test_skips: skips: needs a device this host lacks",
                      "skipped: test_skips: loop_skips_one: iteration 1 cannot run here"])

    def test_unit_failure(self):
        rc, lines = self.runner(unit=["check:fails"])
        self.verdict(rc, lines, 1, "1 passed, 1 failed, 0 skipped",
                     [("test_fails", "1 passed, 1 failed, 0 skipped", "exit status 1")],
                     ["failing: test_fails"])
        self.assertRegex(self.out, r"\n    \S*check_fake\.c:\d+:F:fake:fails:0: Assertion '1 \+ 1 == 3' failed")

    def test_unit_skip_then_teardown_failure_is_a_failure(self):
        rc, lines = self.runner(unit=["check:skip_then_fails"])
        self.verdict(rc, lines, 1, "1 passed, 1 failed, 0 skipped",
                     [("test_skip_then_fails", "1 passed, 1 failed, 0 skipped", "exit status 1")])

    def test_unit_abort_after_100_percent(self):
        rc, lines = self.runner(unit=["check:crash"])
        self.verdict(rc, lines, 1, "1 passed, 1 failed, 0 skipped",
                     [("test_crash", "1 passed, 1 failed, 0 skipped", "killed by signal 6")],
                     ["failing: test_crash"])

    def test_unit_segv_after_100_percent(self):
        rc, lines = self.runner(unit=["unit_segv.sh"])
        self.verdict(rc, lines, 1, "4 passed, 1 failed, 0 skipped",
                     [("test_segv", "4 passed, 1 failed, 0 skipped", "killed by signal 11")])

    def test_unit_exit_status_after_100_percent(self):
        rc, lines = self.runner(unit=["unit_exit3.sh"])
        self.verdict(rc, lines, 1, "4 passed, 1 failed, 0 skipped",
                     [("test_exit3", "4 passed, 1 failed, 0 skipped", "exit status 3")])

    def test_unit_timeout_after_100_percent(self):
        rc, lines = self.runner(unit=["unit_hangs.sh"], env={"UNIT_TIMEOUT": "2"})
        self.verdict(rc, lines, 1, "4 passed, 1 failed, 0 skipped",
                     [("test_hangs", "4 passed, 1 failed, 0 skipped", "timed out after 2s")])

    def test_unit_silent_exit_0(self):
        rc, lines = self.runner(unit=["unit_silent.sh"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_silent", "0 passed, 1 failed, 0 skipped", "no Check summary")])

    def test_unit_zero_tests(self):
        rc, lines = self.runner(unit=["unit_zero.sh"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_zero", "0 passed, 1 failed, 0 skipped", "ran 0 tests")])

    def test_unit_more_skips_than_passes(self):
        rc, lines = self.runner(unit=["unit_stray_skips.sh"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 2 skipped",
                     [("test_stray_skips", "0 passed, 1 failed, 2 skipped",
                       "more SKIP lines than passing checks")])

    def test_unit_dir_without_tests(self):
        rc, lines = self.runner(empty_unit_dir=True)
        udir = os.path.join(self.dir, "unit")
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [(udir, "0 passed, 1 failed, 0 skipped", "no unit tests found there")])

    def test_sanitizer_report_fails_a_passing_file(self):
        san = os.path.join(self.dir, "san")
        os.mkdir(san)
        rc, lines = self.runner(unit=["unit_sanitizer.sh"], env={"SANITIZE_LOG_DIR": san})
        self.verdict(rc, lines, 1, "2 passed, 1 failed, 0 skipped",
                     [("test_sanitizer", "2 passed, 0 failed, 0 skipped", "")],
                     ["failing: test_sanitizer", "sanitizer reports: 1 (in %s/seen)" % san])
        self.assertRegex(self.out, r"test_sanitizer: sanitizer report asan\.\d+:\n"
                                   r"    ERROR: AddressSanitizer: heap-use-after-free")

    # unittest files.

    def test_py_passes(self):
        rc, lines = self.runner(py=["py_passes.py"])
        self.verdict(rc, lines, 0, "2 passed, 0 failed, 0 skipped",
                     [("test_passes", "2 passed, 0 failed, 0 skipped", "")])

    def test_py_failure_and_error(self):
        rc, lines = self.runner(py=["py_fails.py"])
        self.verdict(rc, lines, 1, "1 passed, 2 failed, 0 skipped",
                     [("test_fails", "1 passed, 2 failed, 0 skipped", "exit status 1")],
                     ["failing: test_fails"])
        self.assertIn("fail test_fails.Fails.test_raises: ERROR: KeyError: 'boom'", self.out)

    def test_py_skips_counted_with_reasons(self):
        rc, lines = self.runner(py=["py_skips.py"])
        self.verdict(rc, lines, 0, "1 passed, 0 failed, 3 skipped",
                     [("test_skips", "1 passed, 0 failed, 3 skipped", "")],
                     ["skipped: test_skips: test_skips.Skips.test_skips_inside: needs a small tmpfs",
                      "skipped: test_skips: test_skips.SkippedClass.test_a: needs root",
                      "skipped: test_skips: test_skips.SkippedClass.test_b: needs root"])

    def test_py_zero_tests(self):
        rc, lines = self.runner(py=["py_empty.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_empty", "0 passed, 1 failed, 0 skipped", "ran 0 tests; exit status 1")])

    def test_py_expected_failure_is_not_a_pass(self):
        rc, lines = self.runner(py=["py_expected_failure.py"])
        self.verdict(rc, lines, 1, "1 passed, 2 failed, 0 skipped",
                     [("test_expected_failure", "1 passed, 2 failed, 0 skipped", "exit status 1")])

    def test_py_failing_subtests_fail_their_test_once(self):
        rc, lines = self.runner(py=["py_subtests.py"])
        self.verdict(rc, lines, 1, "1 passed, 1 failed, 0 skipped",
                     [("test_subtests", "1 passed, 1 failed, 0 skipped", "exit status 1")])

    def test_py_crash(self):
        rc, lines = self.runner(py=["py_crash.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_crash", "0 passed, 1 failed, 0 skipped",
                       "no verdicts: the run did not finish; killed by signal 11")])

    def test_py_exit_0_midway(self):
        rc, lines = self.runner(py=["py_exit0.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_exit0", "0 passed, 1 failed, 0 skipped",
                       "no verdicts: the run did not finish")])

    def test_py_output_that_looks_like_success(self):
        rc, lines = self.runner(py=["py_lies.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_lies", "0 passed, 1 failed, 0 skipped", "exit status 1")])

    def test_py_setupclass_error(self):
        rc, lines = self.runner(py=["py_setupclass.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_setupclass", "0 passed, 1 failed, 0 skipped", "exit status 1")])

    def test_py_import_error(self):
        rc, lines = self.runner(py=["py_import_error.py"])
        self.verdict(rc, lines, 1, "0 passed, 1 failed, 0 skipped",
                     [("test_import_error", "0 passed, 1 failed, 0 skipped", "exit status 1")])

    # Several files: the counts add up, one bad file fails the run.

    def test_mixed_run_all_good(self):
        rc, lines = self.runner(unit=["check:skips"], py=["py_passes.py", "py_skips.py"])
        self.verdict(rc, lines, 0, "6 passed, 0 failed, 5 skipped")
        self.assertNotIn("failing:", self.out)

    def test_tests_variable_runs_only_the_named_files(self):
        rc, lines = self.runner(unit=["check:skips", "check:crash"], py=["py_passes.py", "py_fails.py"],
                                env={"TESTS": "test_skips test_passes"})
        self.verdict(rc, lines, 0, "5 passed, 0 failed, 2 skipped")
        self.assertNotIn("test_crash", self.out)
        self.assertNotIn("test_fails", self.out)

    def test_tests_variable_names_a_missing_file(self):
        rc, lines = self.runner(py=["py_passes.py"], env={"TESTS": "test_passes test_nonesuch"})
        self.verdict(rc, lines, 1, "2 passed, 1 failed, 0 skipped",
                     [("test_nonesuch", "0 passed, 1 failed, 0 skipped", "no such test file")])

    def test_mixed_run_one_crash(self):
        rc, lines = self.runner(unit=["check:skips", "check:crash"], py=["py_passes.py"])
        self.verdict(rc, lines, 1, "6 passed, 1 failed, 2 skipped", present=["failing: test_crash"])


if __name__ == "__main__":
    unittest.main()
