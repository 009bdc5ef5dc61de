"""Docstring sections that several public functions share, written once.

Functions that take the same arguments (:func:`pixgmm.fit` and
:func:`pixgmm.fitting.fit_em`, :func:`pixgmm.fit_classes` and
:func:`pixgmm.fitting.fit_classes_em`) document them in one text, put into each
docstring at a marker line ``%(name)s`` by :func:`shared_sections`.
"""

from __future__ import annotations


def shared_sections(**texts):
    """A decorator putting each ``texts[name]`` into a docstring at its line ``    %(name)s``.

    Each text is a whole numpydoc section (heading included), indented as a
    module-level function's docstring. A docstring without one of the markers
    is an error, so a marker cannot be lost unnoticed; a docstring stripped by
    ``python -OO`` is left as it is.

    Examples
    --------
    >>> from pixgmm._docshare import shared_sections
    >>> @shared_sections(args="    Parameters\\n    ----------\\n    x : int\\n")
    ... def f(x):
    ...     '''Do it.
    ...
    ...     %(args)s
    ...     '''
    >>> print(f.__doc__)
    Do it.
    <BLANKLINE>
        Parameters
        ----------
        x : int
    <BLANKLINE>
    >>> def g():
    ...     'No marker.'
    >>> shared_sections(args="")(g)
    Traceback (most recent call last):
    ValueError: g's docstring has no line %(args)s
    """

    def put(func):
        if func.__doc__ is None:  # python -OO
            return func
        for name, text in texts.items():
            marker = f"    %({name})s\n"
            if marker not in func.__doc__:
                raise ValueError(f"{func.__qualname__}'s docstring has no line {marker.strip()}")
            func.__doc__ = func.__doc__.replace(marker, text)
        return func

    return put
