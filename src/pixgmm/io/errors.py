"""The exceptions of pixgmm's I/O layer, and the one-line reason they carry.

Every reader raises :class:`ReadError` for a file it cannot use (with the reason
in plain words: ``"no such file"``, ``"cannot decode image: ..."``) and
:class:`PixelLimitError` for an image over the pixel limit, before decoding it.
Every writer raises :class:`OutputError` for an output it cannot write (naming
the output and the operating system's reason) and :class:`OutputExists` for an
output that exists and may not be replaced. The command line reports each as
one failed input; the API lets them propagate. They subclass the built-in
exceptions a caller would catch anyway (``OSError``, ``ValueError``,
``FileExistsError``).
"""

from __future__ import annotations


class ReadError(OSError, ValueError):
    """A file that cannot be read as an image; ``str(exc)`` is the reason shown to the user.

    Both an ``OSError`` (the file) and a ``ValueError`` (its content), like
    :class:`io.UnsupportedOperation`.
    """


class MissingInput(ReadError, FileNotFoundError):
    """The input does not exist (a path with nothing there, an object key not in its bucket)."""


class PixelLimitError(ReadError):
    """An image larger than the pixel limit; refused before it is decoded.

    ``size`` describes it (``"14000 x 14000 pixels"``), ``n_pixels`` and
    ``limit`` are the numbers, and :meth:`with_way_out` gives the same refusal with
    another sentence saying how to process it anyway (each caller names the options
    it has).

    Parameters
    ----------
    size : str
        The image's size in words, e.g. ``"14000 x 14000 pixels"`` (with
        ``" x 3 pages"`` for several pages).
    n_pixels : int
        The pixels of the image, all pages together.
    limit : int
        The pixel limit in force (:func:`pixgmm.io.limits.pixel_limit`).
    way_out : str
        The sentence that ends the message: how to process the image anyway.
    """

    def __init__(self, size, n_pixels, limit, way_out):
        self.size, self.n_pixels, self.limit, self.way_out = size, n_pixels, limit, way_out
        super().__init__(
            f"the image is {size} ({n_pixels:,} pixels), over the limit of {limit:,} "
            f"pixels read into memory at once; {way_out}"
        )

    def __reduce__(self):  # pickled by its fields (a Dask worker may raise it)
        return type(self), (self.size, self.n_pixels, self.limit, self.way_out)

    def with_way_out(self, way_out):
        """The same refusal, advising ``way_out`` instead."""
        return PixelLimitError(self.size, self.n_pixels, self.limit, way_out)


class OutputError(OSError):
    """An output that cannot be written; the message names the output and the OS's reason."""


class OutputExists(FileExistsError):
    """An output exists and may not be replaced (the command line's ``--overwrite`` is not given)."""


def first_line(exc):
    """The first line of an exception's message (its type name if it has none).

    Examples
    --------
    >>> from pixgmm.io.errors import first_line
    >>> first_line(ValueError("bad header\\nat byte 12")), first_line(KeyError())
    ('bad header', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
