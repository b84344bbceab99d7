"""Every exercise's reference solution passes its checker, its typical mistake does not, and an
untouched stub is reported as not attempted (so notebooks run before anyone solved anything)."""

import pytest

from zfhelpers import course

EXERCISES = course.all_exercises()


def test_there_are_exercises():
    assert len(EXERCISES) >= 1


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_solution_passes_and_mistake_fails(key):
    ex = EXERCISES[key]
    assert ex.solution is not None, f"{key} has no reference solution"
    assert course.check(key, ex.solution).ok, f"{key}: the reference solution fails its own checker"
    if ex.mistake is not None:
        assert not course.check(key, ex.mistake).ok, f"{key}: the checker accepts the typical mistake"


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_an_untouched_stub_is_not_attempted(key):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = course.check(key, stub)
    assert not result.ok and not result.attempted
