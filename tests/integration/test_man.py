"""test_man.py - the man pages in man/ cannot drift from the code:

- every directive of the table in common/config_grammar.c (cfg_directives[])
  has an entry `.It Ic NAME` in relayd.conf.5, with a default and an
  example line `.Dl NAME ...`, and the page documents no directive the
  table lacks;
- every command of the table in common/ctl.c (ctl_commands[]) has an entry
  `.It Cm NAME` in relayctl.8 naming the arguments of its usage, and those
  the table marks as changing something say they need root or
  control-group (and only those);
- every option in relayd's getopt string (relayd/relayd.c) is in relayd.8;
- every option of relayd/sendmail/sendmail_opts.c (its switch, its -b modes,
  the historic letters it skips, the names it answers to) is in sendmail.8;
- `mandoc -T lint -W warning` says nothing about any page, nor does groff (what man(1) uses).

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_man
"""
import glob
import os
import re
import shutil
import subprocess
import unittest

from harness import TOP

MAN = os.path.join(TOP, "man")


def read(*path):
    with open(os.path.join(TOP, *path)) as f:
        return f.read()


def c_table(source, name):
    """The rows of a C table `name[] = { {...}, ... };` as lists of their
    top-level fields (strings unquoted)."""
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\n\};" % re.escape(name), source, re.S)
    if m is None:
        raise AssertionError("no table %s[] found" % name)
    rows = []
    for row in re.findall(r"\{([^{}]*)\}", m.group(1)):
        fields = [f.strip() for f in re.findall(r'"[^"]*"|[^,]+', row) if f.strip()]
        rows.append([f[1:-1] if f.startswith('"') else f for f in fields])
    return rows


def entries(page, macro):
    """{name: text of its entry} for each `.It MACRO name` of page; an
    entry runs to the next one or to the next section."""
    out = {}
    starts = [(m.start(), m.group(1)) for m in
              re.finditer(r"^\.It %s ([^\s]+)" % macro, page, re.M)]
    for i, (pos, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(page)
        sh = page.find("\n.Sh ", pos)
        if sh != -1 and sh < end:
            end = sh
        out[name] = page[pos:end]
    return out


class DirectivesInRelaydConf5(unittest.TestCase):
    def setUp(self):
        self.table = [row[0] for row in c_table(read("common", "config_grammar.c"),
                                                "cfg_directives")]
        self.page = entries(read("man", "relayd.conf.5"), "Ic")

    def test_table_was_read(self):
        # The extractor itself: a parse that finds nothing must not pass.
        self.assertGreaterEqual(len(self.table), 20, self.table)
        self.assertIn("hostname", self.table)
        self.assertIn("delivery-concurrency", self.table)

    def test_every_directive_documented(self):
        missing = [d for d in self.table if d not in self.page]
        self.assertEqual(missing, [], "directives missing from man/relayd.conf.5")

    def test_no_documented_directive_the_code_lacks(self):
        extra = sorted(set(self.page) - set(self.table))
        self.assertEqual(extra, [], "man/relayd.conf.5 documents directives the code lacks")

    def test_each_entry_has_default_and_example(self):
        for d in self.table:
            text = self.page.get(d)
            if text is None:
                continue  # reported by test_every_directive_documented
            with self.subTest(directive=d):
                self.assertIn("Default", text)
                self.assertRegex(text, r"(?m)^\.Dl %s( |$)" % re.escape(d))


class CommandsInRelayctl8(unittest.TestCase):
    def setUp(self):
        # {"name", min_args, max_args, targets, mutates, "usage"}
        self.table = c_table(read("common", "ctl.c"), "ctl_commands")
        self.page = entries(read("man", "relayctl.8"), "Cm")

    def test_table_was_read(self):
        names = [row[0] for row in self.table]
        self.assertGreaterEqual(len(names), 8, names)
        self.assertIn("status", names)
        for row in self.table:
            self.assertIn(row[4], ("0", "1"), row)

    def test_every_command_documented(self):
        missing = [row[0] for row in self.table if row[0] not in self.page]
        self.assertEqual(missing, [], "commands missing from man/relayctl.8")

    def test_arguments_and_privilege(self):
        for name, _, _, _, mutates, usage in self.table:
            text = self.page.get(name)
            if text is None:
                continue
            with self.subTest(command=name):
                header = text.splitlines()[0]
                for arg in re.findall(r"\b[A-Z]{2,}\b", usage):
                    self.assertIn("Ar " + arg, header)
                if "--summary" in usage:
                    self.assertIn("Fl Fl summary", header)
                if "--json" in usage:
                    self.assertIn("Fl Fl json", header)
                    self.assertRegex(text, r"(?m)^\[?\{\"")  # a JSON example
                needs = "Needs root or" in text
                self.assertEqual(needs, mutates == "1",
                                 "root/control-group note does not match the table")


class OptionsInRelayd8(unittest.TestCase):
    def test_every_option_documented(self):
        m = re.search(r'getopt\(argc, argv, "([^"]+)"\)', read("relayd", "relayd.c"))
        self.assertIsNotNone(m)
        letters = m.group(1).replace(":", "")
        self.assertIn("f", letters)
        page = read("man", "relayd.8")
        for c in letters:
            with self.subTest(option=c):
                # An entry of the option list, or (-W, -X) a sentence of its own.
                self.assertTrue(re.search(r"(?m)^\.(It )?Fl %s( Ar \w+)?$" % c, page),
                                "option -%s is not in man/relayd.8" % c)


class OptionsInSendmail8(unittest.TestCase):
    """Every option sendmail_opts.c acts on has an entry `.It Fl X` in
    sendmail.8 (-b modes as `.It Fl bm`...), every historic letter it
    skips with its value is named, and so are the names it answers to."""

    def setUp(self):
        self.src = read("relayd", "sendmail", "sendmail_opts.c")
        self.page = read("man", "sendmail.8")

    def test_every_option_documented(self):
        letters = re.findall(r"^\tcase '(\w)':", self.src, re.M)
        self.assertGreaterEqual(len(letters), 8, letters)
        for c in letters:
            if c == "b":
                continue  # its modes: test_every_b_mode_documented
            with self.subTest(option=c):
                # -o is documented by its one meaning, -oi.
                entry = "oi" if c == "o" else c
                self.assertTrue(re.search(r"(?m)^\.It Fl %s( Ar \w+)?$" % entry, self.page),
                                "option -%s is not in man/sendmail.8" % entry)

    def test_every_b_mode_documented(self):
        modes = [row[0] for row in c_table(self.src, "sendmail_bmodes")]
        self.assertEqual(sorted(modes), ["i", "m", "p", "s"])
        for mode in modes:
            with self.subTest(mode=mode):
                self.assertTrue(re.search(r"(?m)^\.It Fl b%s$" % mode, self.page),
                                "-b%s is not in man/sendmail.8" % mode)

    def test_ignored_historic_options_named(self):
        m = re.search(r'sendmail_valued\[\] = "(\w+)"', self.src)
        self.assertIsNotNone(m)
        for c in m.group(1):
            with self.subTest(option=c):
                self.assertTrue(re.search(r"(?m)^\.(It )?Fl %s( |$)" % c, self.page),
                                "-%s is not in man/sendmail.8" % c)

    def test_names_it_answers_to(self):
        names = [row[0] for row in c_table(self.src, "sendmail_aliases")]
        self.assertEqual(sorted(names), ["mailq", "newaliases"])
        for name in names:
            with self.subTest(name=name):
                self.assertTrue(re.search(r"(?m)^\.Nm %s( ,)?$" % name, self.page),
                                "%s is not named in man/sendmail.8" % name)


@unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed (make deps installs it)")
class Lint(unittest.TestCase):
    def test_mandoc_lint_warns_nothing(self):
        pages = sorted(glob.glob(os.path.join(MAN, "*.[1-8]")))
        self.assertGreaterEqual(len(pages), 4, pages)
        self.assertIn(os.path.join(MAN, "sendmail.8"), pages)
        for page in pages:
            with self.subTest(page=os.path.basename(page)):
                p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", page],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.stdout + p.stderr, "")
                self.assertEqual(p.returncode, 0)

    def test_groff_renders_without_warnings(self):
        """man(1) on Debian formats with groff, whose mdoc macros fail where mandoc does not."""
        pages = sorted(glob.glob(os.path.join(MAN, "*.[1-8]")))
        for page in pages:
            with self.subTest(page=os.path.basename(page)):
                p = subprocess.run(["groff", "-mandoc", "-Tutf8", "-ww", "-z", page],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.stderr, "")
                self.assertEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
