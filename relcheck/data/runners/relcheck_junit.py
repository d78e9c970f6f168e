"""JUnit XML for test suites that run with unittest or Django's runner, without the target installing anything:
relcheck puts this directory on the tests' PYTHONPATH and names the file in $RELCHECK_JUNIT.

    python -m relcheck_junit discover -s tests                          # instead of python -m unittest ...
    python manage.py test --testrunner=relcheck_junit.DjangoRunner      # Django's own runner, results recorded

Standard library only (Django is imported only by DjangoRunner, from the target's environment).
"""

from __future__ import annotations

import os
import sys
import unittest
import xml.etree.ElementTree as ET


def _names(test) -> tuple[str, str]:
    """(classname, name) as pytest's JUnit writes them; loader errors (_FailedTest, _ErrorHolder) by their id."""
    method = getattr(test, "_testMethodName", None)
    if method and method != "runTest":
        return f"{type(test).__module__}.{type(test).__qualname__}", method
    return "", test.id() if hasattr(test, "id") else str(test)


class JUnitResult(unittest.TextTestResult):
    """A TextTestResult that also keeps each test's outcome and writes them as JUnit XML when the run stops."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cases: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # name -> [(kind, message, text)]

    def _record(self, test, kind: str = "", message: str = "", text: str = "") -> None:
        outcomes = self.cases.setdefault(_names(test), [])
        if kind:
            outcomes.append((kind, message, text))

    def _error(self, test, err, kind: str) -> None:
        text = self._exc_info_to_string(err, test)  # type: ignore[attr-defined]
        self._record(test, kind, f"{err[0].__name__}: {err[1]}".splitlines()[0][:500], text)

    def startTest(self, test) -> None:
        super().startTest(test)
        self._record(test)

    def addError(self, test, err) -> None:
        super().addError(test, err)
        self._error(test, err, "error")

    def addFailure(self, test, err) -> None:
        super().addFailure(test, err)
        self._error(test, err, "failure")

    def addSubTest(self, test, subtest, err) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._error(test, err, "failure" if issubclass(err[0], test.failureException) else "error")

    def addSkip(self, test, reason) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test, err) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "skipped", "expected failure")  # as pytest's JUnit writes an xfail

    def addUnexpectedSuccess(self, test) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "failure", "unexpected success (marked expectedFailure)")

    def stopTestRun(self) -> None:
        super().stopTestRun()
        path = os.environ.get("RELCHECK_JUNIT")
        if path:
            write(self.cases, path)


def write(cases: dict, path: str) -> None:
    suite = ET.Element("testsuite", name="relcheck_junit")
    counts = {"failure": 0, "error": 0, "skipped": 0}
    for (classname, name), outcomes in cases.items():
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        kinds = [kind for kind, _, _ in outcomes]
        # one entry per test: its error, else its (first) failure, else its skip
        for kind in ("error", "failure", "skipped"):
            if kind in kinds:
                _, message, text = outcomes[kinds.index(kind)]
                ET.SubElement(case, kind, message=message).text = text or None
                counts[kind] += 1
                break
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


class JUnitRunner(unittest.TextTestRunner):
    resultclass = JUnitResult


try:  # Django's runner, when the target has Django
    from django.test.runner import DiscoverRunner
except ImportError:  # pragma: no cover - only plain unittest here
    DiscoverRunner = None  # type: ignore[assignment,misc]

if DiscoverRunner is not None:

    class DjangoRunner(DiscoverRunner):  # type: ignore[valid-type,misc]
        """Django's DiscoverRunner (test databases, --parallel, tags ...) whose results are recorded as JUnit;
        with --parallel the workers' results are replayed into this one."""

        def get_resultclass(self):
            return JUnitResult


if __name__ == "__main__":
    sys.argv[0] = "python -m unittest"
    unittest.main(module=None, testRunner=JUnitRunner)
