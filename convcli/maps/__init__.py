"""Activation maps as pictures and files: levels, one image's map, batch rendering and the output folder.

:mod:`.levels` turns a map into 8-bit grey levels (``--normalize``), colours
them (``--cmap``) and upscales them; :mod:`.sheet` lays out the contact sheet;
:mod:`.png` encodes PNGs fast.  :mod:`.single` computes one image's map (in
strips for big pictures, also kernel pipelines and channel sums), verifies it
against scipy and describes it; :mod:`.writing` writes a map as PNG, JPEG,
WebP, BMP, ``.npy`` or TIFF.  :mod:`.plan` checks a batch render up front,
:mod:`.batch` carries it out, :mod:`.folder` owns the output folder and
``manifest.json``, and :mod:`.writer` (with :mod:`.staging`) writes its PNGs
on threads.
:mod:`.arrays` writes a whole dataset's maps as one ``.npy`` array and
:mod:`.zarrstore` as a Zarr store computed with Dask, both from the chunks of
items that :mod:`.items` reads and correlates.  It may import
:mod:`convcli.io`, :mod:`convcli.layers`, numpy, scipy and Pillow, and lazily
the optional extras: matplotlib for colour maps (``convcli[cmap]``), and dask,
distributed and zarr in :mod:`.zarrstore` only (``convcli[dask]``); never
:mod:`convcli.gradcheck`, :mod:`convcli.cli`, click or rich.
"""
