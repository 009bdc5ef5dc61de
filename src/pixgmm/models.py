"""Built-in colour models shipped with pixgmm.

The Jones & Rehg (1999) skin and non-skin mixtures are read once from the
package data file ``pixgmm/data/jones_rehg_1999.json`` and cached; the
:class:`~pixgmm.Mixture` objects returned are immutable, so sharing them is safe.
"""

from __future__ import annotations

import functools
from importlib import resources

from ._jsonio import parse_json
from .mixture import Mixture

__all__ = ["jones_rehg_nonskin", "jones_rehg_skin"]

_DATA_FILE = "jones_rehg_1999.json"
#: Its JSON Schema, in ``pixgmm/data/schema/`` (checked by tests/test_model_files.py).
_SCHEMA_FILE = "jones-rehg-1999.json"


@functools.lru_cache(maxsize=1)
def _jones_rehg_data():
    raw = resources.files("pixgmm").joinpath("data", _DATA_FILE).read_bytes()
    source = f"pixgmm/data/{_DATA_FILE}"
    # package data, checked against its schema by the test suite
    # (tests/test_models.py): not validated again here, which would import jsonschema
    # on every cold start
    return parse_json(raw, source)


@functools.lru_cache(maxsize=4)
def _jones_rehg(part, renormalize):
    data = _jones_rehg_data()
    block = data[part]
    model = Mixture(
        block["weights"],
        block["means"],
        block["variances"],
        data["covariance_type"],
        channels=data["color_order"],
    )
    return model.renormalized() if renormalize else model


def _check_flag(renormalize):
    if not isinstance(renormalize, bool):
        raise TypeError(f"renormalize must be True or False, got {renormalize!r}")
    return renormalize


def jones_rehg_skin(renormalize=False):
    """The Jones & Rehg 16-component skin-colour mixture (RGB, 0..255).

    Parameters
    ----------
    renormalize : bool, default False
        False: the weights as published, which sum to 0.9992 (so the density
        integrates to 0.9992). True: the weights divided by their sum.

    Returns
    -------
    Mixture
        16 components, ``covariance_type="diag"``, ``channels="RGB"``. Declare
        your image's order when it differs (``channels="BGR"`` for OpenCV).

    Notes
    -----
    From M. J. Jones and J. M. Rehg, "Statistical Color Models with Application
    to Skin Detection", CVPR 1999; Compaq CRL technical report 98/11; IJCV
    46(1):81-96, 2002. The paper fitted the mixture to about a billion
    hand-labelled pixels from web images.

    Provenance: the 224 numbers of both mixtures were cross-checked number by
    number across seven independent public transcriptions (among them
    gt-ros-pkg/hrl-assistive ``skin_color_util.h``, dalmirdasilva/SkinNoSkin
    ``Algorithm.java`` and sonots/opencvx ``cvskincolorgmm.h``); the paper's
    table itself was not consulted directly. No transcription disagrees on a
    mean. One weight is disputed: skin component 11 (``weights[10]``) is 0.1100
    in every copy but one, which gives 0.1108. 0.1100 is used here; with it the
    weights sum to 0.9992, with 0.1108 to exactly 1.0000, so 0.1108 may be the
    paper's value. The effect on classification is negligible (0.0008 of the
    mixture's mass). The JSON's ``notes`` field records the details.

    ``variances`` in the data file are the diagonal covariance entries
    (sigma squared), not standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> from pixgmm.models import jones_rehg_skin
    >>> skin = jones_rehg_skin()
    >>> skin
    Mixture(n_components=16, n_features=3, covariance_type='diag', channels='RGB')
    >>> round(float(skin.weights.sum()), 4), float(jones_rehg_skin(renormalize=True).weights.sum())
    (0.9992, 1.0)
    >>> pixgmm.log_density(np.array([[200, 140, 110]], np.uint8), skin).round(2).tolist()
    [-12.9]
    """
    return _jones_rehg("skin", _check_flag(renormalize))


def jones_rehg_nonskin(renormalize=False):
    """The Jones & Rehg 16-component non-skin-colour mixture (RGB, 0..255).

    Parameters
    ----------
    renormalize : bool, default False
        False: the weights as published, which sum to 0.9996. True: the
        weights divided by their sum.

    Returns
    -------
    Mixture
        16 components, ``covariance_type="diag"``, ``channels="RGB"``.

    Notes
    -----
    Same source and provenance as :func:`jones_rehg_skin`. One transcription
    rounds four of the non-skin variances to five significant digits
    (component 6 R 2502.2 and G 1383.5, component 7 G 1766.9 and B 1582.5);
    the two-decimal values agreed on by the other copies are used.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> from pixgmm.models import jones_rehg_nonskin, jones_rehg_skin
    >>> round(float(jones_rehg_nonskin().weights.sum()), 4)
    0.9996
    >>> img = np.array([[[200, 140, 110], [40, 90, 160]]], np.uint8)  # skin tone, sky blue
    >>> (pixgmm.log_ratio(img, jones_rehg_skin(), jones_rehg_nonskin()) > 0).tolist()
    [[True, False]]
    """
    return _jones_rehg("nonskin", _check_flag(renormalize))
