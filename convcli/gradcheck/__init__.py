"""Checking gradients of code: convcli's own layers (the self-check) and a student's file, with reports.

A student's file (``convcli gradcheck --impl``): :mod:`.loading` reads a
``.py`` or ``.ipynb`` file; :mod:`.conventions` says how a course calls its
layers (the built-in ``lab``, ``cs231n``, ``dlai``, ``holberton`` and a
course's own adapter file); :mod:`.cases` chooses the cases a convention can
express; :mod:`.session` runs the file in a child (:mod:`._worker`, which
never imports convcli) through :mod:`.runner` and :mod:`.sandbox` (within :mod:`.limits`), talking
:mod:`.protocol`; :mod:`.explain` and :mod:`.verdicts` judge every output and
gradient in the parent against :mod:`.references` (convcli's layers);
:mod:`.impl` ties them together.  :mod:`.selfcheck` and
:mod:`.selfcheck_layers` check convcli's own layers; :mod:`.reports` renders
records as text, JSON and JUnit.  It may import :mod:`convcli.checking`,
:mod:`convcli.layers`, :mod:`convcli.io` (atomic writes), numpy and scipy;
never :mod:`convcli.maps`, :mod:`convcli.cli`, click or rich.
"""
