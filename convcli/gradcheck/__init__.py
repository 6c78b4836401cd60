"""Checking gradients of code: convcli's own layers (the self-check) and someone's file, with reports.

:mod:`.lab` knows the lab's functions, their inputs, references and verdicts;
:mod:`.impl` checks a user's file through :mod:`.runner`, which runs
:mod:`._worker` in a child process; :mod:`.selfcheck` checks convcli's own
layers; :mod:`.reports` turns the check records into text, JSON and JUnit.  It
may import :mod:`convcli.checking`, :mod:`convcli.layers`, :mod:`convcli.io`
(atomic writes), numpy and scipy; never :mod:`convcli.maps`, :mod:`convcli.cli`,
click or rich.
"""
