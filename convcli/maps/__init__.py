"""Activation maps as pictures and files: levels, one image's map, batch rendering and the output folder.

:mod:`.levels` turns a map into 8-bit grey levels (``--normalize``) and
upscales it; :mod:`.sheet` lays out the contact sheet; :mod:`.single` computes
one image's map (in strips for big pictures), verifies it against scipy and
describes it; :mod:`.writing` writes a map as PNG, ``.npy`` or TIFF;
:mod:`.batch` renders many images × many filters and :mod:`.folder` owns the
output folder, its writer processes and ``manifest.json``; :mod:`.arrays`
writes a whole dataset's maps as one ``.npy`` array and :mod:`.zarrstore` as a
Zarr store computed with Dask.  It may import :mod:`convcli.io`,
:mod:`convcli.layers`, numpy, scipy and Pillow, and (lazily, in
:mod:`.zarrstore` only: the optional extra ``convcli[dask]``) dask, distributed
and zarr; never :mod:`convcli.gradcheck`, :mod:`convcli.cli`, click or rich.
"""
