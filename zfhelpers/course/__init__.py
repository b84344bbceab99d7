"""Exercises for teaching from the notebooks: "build it yourself" cells whose result a checker
compares with the package's, and the reference solutions (tested: every solution passes its
checker, and a typical mistake does not).

In a notebook::

    def my_relu_backward(grad):      # the student's code
        ...
    zfhelpers.course.check("02.deconvnet_relu", my_relu_backward)

A stub that still raises ``NotImplementedError`` is reported as "not attempted yet", so notebooks
run end to end (papermill, nbval) before anyone has solved anything."""

from .registry import EXERCISES, CheckResult, Exercise, all_exercises, check, exercise, solution

__all__ = ["EXERCISES", "CheckResult", "Exercise", "all_exercises", "check", "exercise", "solution"]
