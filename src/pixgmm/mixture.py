"""The :class:`Mixture` model: validated parameters and what evaluation needs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._jsonio import (
    check_kind,
    identity_digest,
    plain_json,
    read_json,
    validate,
    write_json,
)
from ._validation import format_channels, normalize_channels

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
SCHEMA = "pixgmm.mixture"
#: The newest file version this pixgmm reads and writes (2: version 1 plus the ``training``
#: block; 3: version 2 plus the value scale of the pixels fitted, ``training.scale``).
SCHEMA_VERSION = 3
#: The JSON Schema of each file version, in ``pixgmm/data/schema/``.
_SCHEMA_FILES = {1: "mixture-1.json", 2: "mixture-2.json", 3: "mixture-3.json"}
#: The value scales a training record may name (``training["scale"]``, version 3).
SCALES = ("raw", "0..255", "0..1")
_LOG_2PI = math.log(2.0 * math.pi)


def _as_float_array(value, name, ndim=None):
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        if _is_ragged(value):
            raise ValueError(
                f"{name} is ragged (its rows have different lengths), got {value!r:.80}; "
                "every row needs one value per feature"
            ) from None
        raise TypeError(f"{name} must be an array of real numbers, got {value!r:.80}") from None
    if np.iscomplexobj(value):  # pragma: no cover - np.array(float) already refused
        raise TypeError(f"{name} must be real, got complex values")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        where = f"[{', '.join(map(str, bad))}]" if bad else ""
        raise ValueError(f"{name}{where} is {arr[bad]}; every value must be finite")
    return arr


def _is_ragged(value):
    """True when ``value`` is nested sequences of numbers whose lengths differ."""
    try:
        flat = np.array(value, dtype=object).ravel()
    except (TypeError, ValueError):
        return True
    return any(isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str) for v in flat)


class Mixture:
    """A mixture of K Gaussians in D dimensions, validated and ready to evaluate.

    Parameters
    ----------
    weights : array_like, shape (K,)
        Non-negative mixture weights, not all zero. They are used as given
        (they need not sum to 1); see :meth:`renormalized`.
    means : array_like, shape (K, D)
        Shape (D,) is accepted for a single component.
    covariances : array_like
        Shape depends on ``covariance_type``, as in scikit-learn:
        ``"full"`` (K, D, D), ``"diag"`` (K, D) variances, ``"spherical"`` (K,),
        ``"tied"`` (D, D) shared by every component. For a single component the
        leading K axis may be left out.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
    channels : str or sequence of str, optional
        The model's channel (feature) order, e.g. ``"RGB"``. Evaluation functions
        use it to reorder the model for an image whose order differs
        (``channels="BGR"`` for an OpenCV image).
    reg_covar : float, default 0
        Added to the diagonal of every covariance before validation; the
        usual way to make a zero variance usable.

    Raises
    ------
    ValueError
        Negative or all-zero weights, non-finite means, a non-positive variance
        or a covariance that is not positive definite (naming the component and
        channel), or inconsistent K and D.

    Notes
    -----
    A Mixture is immutable. On construction it computes the Cholesky factor U of
    every precision matrix (``precision = U @ U.T``, upper-triangular, as
    scikit-learn's ``precisions_cholesky_``) and the log normaliser
    ``log w_k - D/2 log(2 pi) - 1/2 log det(Sigma_k)``. The determinant, not a
    matrix norm, is what normalises a Gaussian.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> m = pixgmm.Mixture([0.6, 0.4], [[200, 150, 120], [80, 50, 40]],
    ...                    [[300, 100, 150], [400, 90, 150]], "diag", channels="RGB")
    >>> m
    Mixture(n_components=2, n_features=3, covariance_type='diag', channels='RGB')
    >>> float(pixgmm.log_density(np.array([200, 150, 120], np.uint8), m))  # doctest: +ELLIPSIS
    -10.927...
    """

    __slots__ = (
        "_channels",
        "_covariance_type",
        "_covariances",
        "_fingerprint",
        "_frozen",
        "_log_norm",
        "_means",
        "_permuted",
        "_prec_chol",
        "_training",
        "_weights",
    )

    def __init__(
        self,
        weights,
        means,
        covariances,
        covariance_type="full",
        *,
        channels=None,
        reg_covar=0.0,
    ):
        if not isinstance(covariance_type, str):
            raise TypeError(
                f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}; "
                f"got {type(covariance_type).__name__} {covariance_type!r:.40}"
            )
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}; "
                f"got {covariance_type!r}"
            )
        try:
            if isinstance(reg_covar, (bool, np.bool_, str, bytes)):
                raise TypeError
            reg_covar = float(reg_covar)
        except (TypeError, ValueError):
            raise TypeError(f"reg_covar must be a number, got {reg_covar!r}") from None
        if not (math.isfinite(reg_covar) and reg_covar >= 0):
            raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar}")

        w = _as_float_array(weights, "weights", ndim=1)
        mu = _as_float_array(means, "means")
        if mu.ndim == 1 and w.shape[0] == 1:
            mu = mu[None, :]
        if mu.ndim != 2:
            raise ValueError(f"means must have shape (n_components, n_features), got {mu.shape}")
        k, d = mu.shape
        if k == 0 or d == 0:
            raise ValueError(
                f"a mixture needs at least one component and one feature; means has shape {mu.shape}"
            )
        if w.shape[0] != k:
            raise ValueError(
                f"weights has {w.shape[0]} entries but means has {k} rows (one per component)"
            )
        if np.any(w < 0):
            i = int(np.argmax(w < 0))
            raise ValueError(f"weights must be non-negative; weights[{i}] = {w[i]}")
        if not np.any(w > 0):
            raise ValueError("weights are all zero; at least one component needs a positive weight")

        cov = _as_float_array(covariances, "covariances")
        expected = {"full": (k, d, d), "diag": (k, d), "spherical": (k,), "tied": (d, d)}[
            covariance_type
        ]
        if k == 1 and covariance_type != "tied" and cov.shape == expected[1:]:
            cov = cov[None]  # one component given without its leading axis, like means
        if cov.shape != expected:
            raise ValueError(
                f"covariances for covariance_type={covariance_type!r} must have shape "
                f"{expected} (n_components={k}, n_features={d}), got {cov.shape}"
            )
        if reg_covar:
            cov = cov.copy()
            if covariance_type in ("diag", "spherical"):
                cov += reg_covar
            elif covariance_type == "tied":
                cov[np.diag_indices(d)] += reg_covar
            else:
                idx = np.arange(d)
                cov[:, idx, idx] += reg_covar

        prec_chol = _precision_cholesky(cov, covariance_type, k, d)
        log_det_half = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            log_w = np.log(w)

        names = normalize_channels(channels)
        if names is not None and len(names) != d:
            raise ValueError(
                f"channels={channels!r} names {len(names)} channel(s) but the model has {d} features"
            )

        for arr in (w, mu, cov, prec_chol):
            arr.setflags(write=False)
        log_norm = log_w + log_det_half - 0.5 * d * _LOG_2PI
        log_norm.setflags(write=False)

        set_ = object.__setattr__
        set_(self, "_weights", w)
        set_(self, "_means", mu)
        set_(self, "_covariances", cov)
        set_(self, "_covariance_type", covariance_type)
        set_(self, "_channels", names)
        set_(self, "_prec_chol", prec_chol)
        set_(self, "_log_norm", log_norm)
        set_(self, "_fingerprint", identity_digest(SCHEMA, self._defining_fields()))
        set_(self, "_permuted", {})
        set_(self, "_training", None)
        set_(self, "_frozen", True)

    # -- immutability -------------------------------------------------------
    def __setattr__(self, name, value):
        raise AttributeError("Mixture is immutable; build a new one instead")

    def __delattr__(self, name):
        raise AttributeError("Mixture is immutable")

    def __reduce__(self):
        return (_rebuild, (self.to_dict(),))

    def _defining_fields(self):
        """Every field that defines the model: its identity and its file (see :meth:`to_dict`).

        A new defining field is added here, and so enters both ``__eq__`` /
        ``__hash__`` / cache keys and the file format.
        """
        return {
            "covariance_type": self._covariance_type,
            "channels": self._channels,
            "weights": self._weights,
            "means": self._means,
            "covariances": self._covariances,
        }

    def __eq__(self, other):
        return isinstance(other, Mixture) and other._fingerprint == self._fingerprint

    def __hash__(self):
        return hash(self._fingerprint)

    # -- public attributes --------------------------------------------------
    @property
    def weights(self):
        """Component weights, shape (K,) (read-only)."""
        return self._weights

    @property
    def means(self):
        """Component means, shape (K, D) (read-only)."""
        return self._means

    @property
    def covariances(self):
        """Covariances in the shape of ``covariance_type`` (read-only)."""
        return self._covariances

    @property
    def covariance_type(self):
        return self._covariance_type

    @property
    def channels(self):
        """The model's channel order (e.g. ``'RGB'``), or None."""
        return format_channels(self._channels)

    @property
    def training(self):
        """How the mixture was fitted, as recorded in its file, or None.

        A new dict on every access, with at least ``"n_pixels"`` (the number of
        training pixels, which ``Classifier(..., priors="counts")`` uses) and,
        for a file written by ``pixgmm fit``, the fit's diagnostics
        (``converged``, ``n_iter``, ``log_likelihood``, ``bic``, ...) and the
        value scale of the pixels fitted, ``"scale"``: ``"raw"`` (values as
        read), ``"0..255"`` (8-bit colours) or ``"0..1"`` (see
        ``pixgmm/data/schema/mixture-3.json``). Not part of the mixture's
        identity: two mixtures with the same parameters are equal whatever
        their training records. See :meth:`with_training`.
        """
        if self._training is None:
            return None
        import json

        return json.loads(self._training)

    @property
    def n_components(self):
        return self._means.shape[0]

    @property
    def n_features(self):
        return self._means.shape[1]

    @property
    def precisions_cholesky(self):
        """Upper-triangular U with ``inv(Sigma_k) = U[k] @ U[k].T``, shape (K, D, D)."""
        return self._prec_chol

    @property
    def is_diagonal(self):
        """True when every covariance is diagonal, so each component factorises over channels."""
        return self._covariance_type in ("diag", "spherical")

    def full_covariances(self):
        """Every covariance as a (K, D, D) array, whatever ``covariance_type``."""
        k, d = self._means.shape
        t = self._covariance_type
        if t == "full":
            return self._covariances.copy()
        if t == "tied":
            return np.broadcast_to(self._covariances, (k, d, d)).copy()
        var = self._covariances if t == "diag" else np.repeat(self._covariances[:, None], d, 1)
        out = np.zeros((k, d, d))
        idx = np.arange(d)
        out[:, idx, idx] = var
        return out

    def log_normalizers(self, normalized=True):
        """``log w_k - 1/2 log det(Sigma_k)`` and, when normalized, ``- D/2 log(2 pi)``."""
        if normalized:
            return self._log_norm
        out = self._log_norm + 0.5 * self.n_features * _LOG_2PI
        out.setflags(write=False)
        return out

    def __repr__(self):
        ch = "" if self._channels is None else f", channels={self.channels!r}"
        return (
            f"Mixture(n_components={self.n_components}, n_features={self.n_features}, "
            f"covariance_type={self._covariance_type!r}{ch})"
        )

    # -- derived models -----------------------------------------------------
    def renormalized(self):
        """The same mixture with weights divided by their sum.

        Examples
        --------
        >>> import pixgmm
        >>> m = pixgmm.Mixture([1, 3], [[0.0], [1.0]], [1.0, 2.0], "spherical")
        >>> m.renormalized().weights.tolist()
        [0.25, 0.75]
        """
        return Mixture(
            self._weights / self._weights.sum(),
            self._means,
            self._covariances,
            self._covariance_type,
            channels=self._channels,
        )._keeping(self._training)

    def with_channels(self, channels):
        """The same mixture, its features reordered to ``channels``.

        ``channels`` must name the same channels as ``self.channels``; with
        ``channels=None`` the names are dropped.

        Examples
        --------
        >>> import pixgmm
        >>> m = pixgmm.Mixture([1.0], [[1, 2, 3]], [[1, 2, 3]], "diag", channels="RGB")
        >>> m.with_channels("BGR").means.tolist()
        [[3.0, 2.0, 1.0]]
        """
        from ._validation import channel_permutation

        names = normalize_channels(channels)
        if names is None:
            return Mixture(
                self._weights, self._means, self._covariances, self._covariance_type
            )._keeping(self._training)
        if self._channels is None:
            if len(names) != self.n_features:
                raise ValueError(
                    f"channels={channels!r} names {len(names)} channel(s) but the model has "
                    f"{self.n_features} features"
                )
            return Mixture(
                self._weights,
                self._means,
                self._covariances,
                self._covariance_type,
                channels=names,
            )._keeping(self._training)
        perm = channel_permutation(self._channels, names)
        if perm is None:
            return self
        key = tuple(perm)
        cached = self._permuted.get(key)
        if cached is not None:
            return cached
        t = self._covariance_type
        cov = self._covariances
        if t == "diag":
            cov = cov[:, perm]
        elif t == "full":
            cov = cov[:, perm][:, :, perm]
        elif t == "tied":
            cov = cov[perm][:, perm]
        result = Mixture(self._weights, self._means[:, perm], cov, t, channels=names)
        result = result._keeping(self._training)
        self._permuted[key] = result
        return result

    def with_training(self, training):
        """The same mixture recording how it was trained (see :attr:`training`).

        Parameters
        ----------
        training : mapping or None
            ``{"n_pixels": N, ...}``: the number of training pixels (an integer
            >= 1) and optionally the fit's diagnostics, with the fields and
            types of the ``training`` block of ``pixgmm/data/schema/mixture-3.json``
            (``n_samples``, ``n_nan``, ``n_points``, ``compression``, ``init``,
            ``reg_covar``, ``converged``, ``n_iter``, ``log_likelihood``, ``bic``,
            ``aic``, ``criterion``, ``candidates``, ``scale``). None drops the record.

        Returns
        -------
        Mixture
            Equal to this one (the record is not part of the identity);
            :meth:`save` writes it as a version 2 file, or version 3 when the
            record names the ``scale``.

        Raises
        ------
        ValueError
            A field that is unknown or of the wrong type, naming it
            (``$.training.n_pixels``).

        Examples
        --------
        >>> import numpy as np
        >>> import pixgmm
        >>> from pixgmm.fitting import fit_em
        >>> rng = np.random.default_rng(0)
        >>> image = rng.normal([200, 120, 90], 10, size=(32, 32, 3)).clip(0, 255).astype(np.uint8)
        >>> result = fit_em(image, 1, channels="RGB")
        >>> model = result.mixture.with_training({"n_pixels": int(result.n_samples)})
        >>> model.training, model == result.mixture
        ({'n_pixels': 1024}, True)
        """
        if training is None:
            return self._keeping(None)
        from collections.abc import Mapping

        if not isinstance(training, Mapping):
            raise TypeError(
                f"training must be a dict such as {{'n_pixels': 1000}} or None, got "
                f"{type(training).__name__}"
            )
        import json

        block = plain_json(dict(training), "training", "$.training", 1)
        doc = {**self.to_dict(), "version": 3, "training": block}
        validate(doc, _SCHEMA_FILES[3], "training")
        return self._keeping(json.dumps(block, allow_nan=False))

    def _keeping(self, training_json):
        """This mixture (or a copy, when the record differs) with ``training_json`` attached."""
        if training_json == self._training:
            return self
        copy = Mixture(
            self._weights,
            self._means,
            self._covariances,
            self._covariance_type,
            channels=self._channels,
        )
        object.__setattr__(copy, "_training", training_json)
        return copy

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_kernels(cls, kernels, *, channels=None, reg_covar=0.0):
        """Build a mixture from (mean, covariance, weight) triples.

        Parameters
        ----------
        kernels : sequence
            Each item is a ``(mean, covariance, weight)`` tuple or an object with
            ``mean``, ``covariance`` and ``weight`` attributes (such as a
            ``namedtuple('Kernel', 'mean covariance weight')``). ``mean`` has shape
            (D,), (1, D) or (D, 1); ``covariance`` is the diagonal, shape (D,),
            (1, D) or (D, 1), or a (D, D) matrix.
        channels : str or sequence of str, optional
        reg_covar : float, default 0
            Added to every variance, as in :class:`Mixture`.

        Returns
        -------
        Mixture
            ``covariance_type="diag"`` when every covariance is diagonal
            (given as a vector or as a matrix with zero off-diagonal entries),
            else ``"full"``.

        Examples
        --------
        >>> import numpy as np
        >>> import pixgmm
        >>> kernels = [(np.array([[73.53], [29.94], [17.76]]), np.diag([765.4, 121.44, 112.8]), 0.0294)]
        >>> pixgmm.Mixture.from_kernels(kernels)
        Mixture(n_components=1, n_features=3, covariance_type='diag')
        """
        if isinstance(kernels, (str, bytes)) or not isinstance(kernels, Sequence):
            try:
                kernels = list(kernels)
            except TypeError:
                raise TypeError(
                    "kernels must be a sequence of (mean, covariance, weight) triples, got "
                    f"{type(kernels).__name__}"
                ) from None
        if len(kernels) == 0:
            raise ValueError("kernels is empty; a mixture needs at least one component")
        means, covs, weights = [], [], []
        for i, kern in enumerate(kernels):
            if all(hasattr(kern, a) for a in ("mean", "covariance", "weight")):
                mean, cov, weight = kern.mean, kern.covariance, kern.weight
            else:
                try:
                    mean, cov, weight = kern
                except (TypeError, ValueError):
                    raise TypeError(
                        f"kernels[{i}] must be a (mean, covariance, weight) triple, got {kern!r:.80}"
                    ) from None
            mean = _as_float_array(mean, f"kernels[{i}].mean")
            if mean.ndim == 2 and 1 in mean.shape:
                mean = mean.reshape(-1)
            if mean.ndim != 1:
                raise ValueError(
                    f"kernels[{i}].mean must have shape (D,), (1, D) or (D, 1), got {mean.shape}"
                )
            d = mean.shape[0]
            cov = _as_float_array(cov, f"kernels[{i}].covariance")
            if cov.ndim == 2 and cov.shape != (d, d) and 1 in cov.shape:
                cov = cov.reshape(-1)
            if cov.shape not in ((d,), (d, d)):
                raise ValueError(
                    f"kernels[{i}].covariance must be the diagonal, shape ({d},), or a "
                    f"({d}, {d}) matrix, got {cov.shape}"
                )
            try:
                weight = float(np.asarray(weight, dtype=np.float64).reshape(()))
            except (TypeError, ValueError):
                raise TypeError(f"kernels[{i}].weight must be a number, got {weight!r}") from None
            if means and d != means[0].shape[0]:
                raise ValueError(
                    f"kernels[{i}].mean has {d} features but kernels[0].mean has {means[0].shape[0]}"
                )
            means.append(mean)
            covs.append(cov)
            weights.append(weight)
        d = means[0].shape[0]

        def is_diag(c):
            return c.ndim == 1 or not np.any(c[~np.eye(d, dtype=bool)])

        if all(is_diag(c) for c in covs):
            var = np.array([c if c.ndim == 1 else np.diagonal(c) for c in covs])
            return cls(weights, means, var, "diag", channels=channels, reg_covar=reg_covar)
        full = np.array([np.diag(c) if c.ndim == 1 else c for c in covs])
        return cls(weights, means, full, "full", channels=channels, reg_covar=reg_covar)

    @classmethod
    def from_sklearn(cls, gmm, *, channels=None):
        """Build a mixture from a fitted scikit-learn ``GaussianMixture``.

        Duck-typed: any object with ``weights_``, ``means_``, ``covariances_`` and
        ``covariance_type`` works (``BayesianGaussianMixture`` too); scikit-learn
        is not imported.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> import pixgmm
        >>> X = np.random.default_rng(0).normal(size=(500, 3))
        >>> gmm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
        >>> pixgmm.Mixture.from_sklearn(gmm)
        Mixture(n_components=2, n_features=3, covariance_type='diag')
        """
        missing = [
            a
            for a in ("weights_", "means_", "covariances_", "covariance_type")
            if not hasattr(gmm, a)
        ]
        if missing:
            raise TypeError(
                f"{type(gmm).__name__} has no {', '.join(missing)}; pass a fitted "
                "scikit-learn GaussianMixture (call .fit first)"
            )
        return cls(
            gmm.weights_, gmm.means_, gmm.covariances_, gmm.covariance_type, channels=channels
        )

    def to_sklearn(self):
        """A fitted ``sklearn.mixture.GaussianMixture`` with these parameters.

        The weights are exported as they are, so ``score_samples`` of the result
        equals :func:`pixgmm.log_density` and ``Mixture.from_sklearn`` gives this
        mixture back. scikit-learn's ``sample`` expects weights that sum to 1:
        call :meth:`renormalized` first when they do not.

        Requires scikit-learn (``pip install pixgmm[fit]``).

        Examples
        --------
        >>> import pixgmm
        >>> m = pixgmm.Mixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
        >>> m.to_sklearn().score_samples([[0.0, 0.0]]).round(4).tolist()
        [-1.8379]
        """
        try:
            from sklearn.mixture import GaussianMixture
        except ImportError:
            raise ImportError(
                "Mixture.to_sklearn needs scikit-learn; install it with pip install 'pixgmm[fit]'"
            ) from None
        t = self._covariance_type
        gmm = GaussianMixture(n_components=self.n_components, covariance_type=t)
        gmm.weights_ = self._weights.copy()
        gmm.means_ = self._means.copy()
        gmm.covariances_ = self._covariances.copy()
        u = self._prec_chol
        if t == "full":
            pc = u.copy()
        elif t == "tied":
            pc = u[0].copy()
        elif t == "diag":
            pc = np.diagonal(u, axis1=1, axis2=2).copy()
        else:
            pc = u[:, 0, 0].copy()
        gmm.precisions_cholesky_ = pc
        if t == "full":
            gmm.precisions_ = np.einsum("kij,klj->kil", pc, pc)
        elif t == "tied":
            gmm.precisions_ = pc @ pc.T
        else:
            gmm.precisions_ = pc**2
        gmm.converged_ = True
        gmm.n_iter_ = 0
        gmm.lower_bound_ = -np.inf
        gmm.n_features_in_ = self.n_features
        return gmm

    # -- persistence --------------------------------------------------------
    def to_dict(self):
        """The documented JSON schema as a dict (see :meth:`save`).

        The lowest version that holds it: 1 without a training record, 2
        (``"training"`` added) with one, 3 when the record names the value scale.
        """
        out = {"schema": SCHEMA, "version": _file_version(self._training)}
        for name, value in self._defining_fields().items():
            if name == "channels":
                value = self.channels
                value = value if value is None or isinstance(value, str) else list(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            out[name] = value
        if self._training is not None:
            out["training"] = self.training
        return out

    @classmethod
    def from_dict(cls, data, *, source="model"):
        """Inverse of :meth:`to_dict`, validated like a model file (see :meth:`save`).

        Raises
        ------
        ValueError
            ``data`` does not follow the schema, or its values do not make a
            mixture; the message starts with ``source`` and names the field.
        """
        data = plain_json(data, source)
        check_kind(data, SCHEMA, SCHEMA_VERSION, source)
        version = data.get("version")
        training = data.get("training")
        if version == 1 and isinstance(training, dict):
            raise ValueError(
                f'{source}: field $.training needs "version": 2 (version 1 files have no '
                "training block); write the file with this pixgmm or set the version to 2"
            )
        if version == 2 and isinstance(training, dict) and "scale" in training:
            raise ValueError(
                f'{source}: field $.training.scale needs "version": 3 (version 2 files record '
                "no value scale); write the file with this pixgmm or set the version to 3"
            )
        known = isinstance(version, int) and not isinstance(version, bool)
        # an unknown or malformed version is validated against version 1, which names it
        validate(data, _SCHEMA_FILES.get(version, _SCHEMA_FILES[1]) if known else _SCHEMA_FILES[1],
                 source)  # fmt: skip
        try:
            model = cls(
                data["weights"],
                data["means"],
                data["covariances"],
                data["covariance_type"],
                channels=data.get("channels"),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None
        if "training" in data:
            import json

            model = model._keeping(json.dumps(data["training"], allow_nan=False))
        return model

    def save(self, path):
        """Write the mixture as JSON (never pickle), atomically.

        The file format is version 1 of the JSON Schema shipped as
        ``pixgmm/data/schema/mixture-1.json``: an object with exactly the fields
        ``"schema": "pixgmm.mixture"``, ``"version": 1``, ``"covariance_type"``,
        ``"weights"`` (K numbers >= 0), ``"means"`` (K x D), ``"covariances"``
        (full K x D x D, diag K x D, spherical K, tied D x D) and the optional
        ``"channels"`` (a string such as ``"RGB"``, a list of names, or null).
        A mixture with a :attr:`training` record is written as version 2
        (``mixture-2.json``): version 1 plus the optional ``"training"`` block;
        as version 3 (``mixture-3.json``) when that record names the value scale
        of the pixels fitted (``"scale"``). :meth:`load` reads every version.
        :meth:`load` refuses anything else: unknown or misspelled fields, numbers
        written as strings or booleans, NaN, Infinity, numbers outside the
        float64 range. Floats round-trip exactly.

        The file is written to a temporary file beside ``path``, synced and
        renamed, so ``path`` never holds half a model.

        Examples
        --------
        >>> import pixgmm, tempfile, os
        >>> m = pixgmm.Mixture([1.0], [[0.0]], [2.0], "spherical")
        >>> path = os.path.join(tempfile.mkdtemp(), "m.json")
        >>> m.save(path)
        >>> pixgmm.Mixture.load(path) == m
        True
        """
        write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path):
        """Read a mixture file (see :meth:`save` for its schema).

        Raises
        ------
        FileNotFoundError, IsADirectoryError, PermissionError, OSError
            The file is missing, a directory or unreadable.
        ValueError
            The file is not UTF-8 JSON or does not follow the schema; the
            message names the file and the field (a JSON path such as
            ``$.means[1][0]``).
        """
        data, source = read_json(path)
        return cls.from_dict(data, source=source)


def _file_version(training_json):
    """The lowest file version that holds a training record (JSON text or None)."""
    if training_json is None:
        return 1
    import json

    return 3 if "scale" in json.loads(training_json) else 2


def _rebuild(data):
    return Mixture.from_dict(data)


def _precision_cholesky(cov, covariance_type, k, d):
    """Upper-triangular U per component with inv(Sigma) = U @ U.T; validates positivity."""
    if covariance_type in ("diag", "spherical"):
        var = cov if covariance_type == "diag" else np.repeat(cov[:, None], d, axis=1)
        bad = np.argwhere(var <= 0)
        if bad.size:
            ki, ci = bad[0]
            where = f"in channel {ci}" if covariance_type == "diag" else "(spherical)"
            raise ValueError(
                f"component {ki} has variance {var[ki, ci]:g} {where}; variances must be > 0 "
                f"(pass reg_covar=1e-6, or a value suited to your data's scale, to regularise)"
            )
        u = np.zeros((k, d, d))
        idx = np.arange(d)
        u[:, idx, idx] = 1.0 / np.sqrt(var)
        return u
    mats = np.broadcast_to(cov, (k, d, d)) if covariance_type == "tied" else cov
    u = np.empty((k, d, d))
    eye = np.eye(d)
    for i in range(k if covariance_type == "full" else 1):
        m = mats[i]
        label = "the tied covariance" if covariance_type == "tied" else f"covariances[{i}]"
        if not np.allclose(m, m.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(m).max())):
            raise ValueError(
                f"{label} is not symmetric; a covariance matrix must equal its transpose"
            )
        try:
            low = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            ev = np.linalg.eigvalsh(m).min()
            zero_diag = np.flatnonzero(np.diagonal(m) <= 0)
            extra = (
                f" (variance {np.diagonal(m)[zero_diag[0]]:g} in channel {zero_diag[0]})"
                if zero_diag.size
                else ""
            )
            raise ValueError(
                f"{label} is not positive definite{extra}; smallest eigenvalue {ev:.3g} "
                f"(pass reg_covar=1e-6, or a value suited to your data's scale, to regularise)"
            ) from None
        # inv(L).T is upper-triangular and inv(Sigma) = inv(L).T @ inv(L)
        u[i] = np.linalg.solve(low, eye).T
    if covariance_type == "tied":
        u[1:] = u[0]
    return u


def as_mixture(model, name="model"):
    """Coerce ``model`` to a :class:`Mixture`.

    Accepts a Mixture (returned as is), a fitted scikit-learn ``GaussianMixture``
    (or anything with its fitted attributes), or a sequence of
    (mean, covariance, weight) triples.

    Parameters
    ----------
    model : Mixture, GaussianMixture or sequence
        A :class:`Mixture`; an object with ``covariance_type`` and ``fit``
        attributes, read by :meth:`Mixture.from_sklearn` (a fitted scikit-learn
        ``GaussianMixture``); or a sequence of (mean, covariance, weight) triples,
        read by :meth:`Mixture.from_kernels`.
    name : str, default "model"
        How the error message names ``model``.

    Returns
    -------
    Mixture
        ``model`` itself when it is a Mixture, else a new one.

    Raises
    ------
    TypeError
        ``model`` is none of the above, a scikit-learn model that is not fitted,
        or an item of the sequence that is not a triple.
    ValueError
        Parameters that make no mixture: an empty sequence, or shapes that do
        not agree.

    Examples
    --------
    >>> import pixgmm
    >>> pixgmm.as_mixture([([0.0, 0.0], [1.0, 1.0], 1.0)])
    Mixture(n_components=1, n_features=2, covariance_type='diag')
    """
    if isinstance(model, Mixture):
        return model
    if hasattr(model, "covariance_type") and hasattr(model, "fit"):
        return Mixture.from_sklearn(model)
    if isinstance(model, Sequence) and not isinstance(model, (str, bytes)):
        return Mixture.from_kernels(model)
    raise TypeError(
        f"{name} must be a pixgmm.Mixture, a sequence of (mean, covariance, weight) triples or a "
        f"fitted scikit-learn GaussianMixture; got {type(model).__name__}"
    )
