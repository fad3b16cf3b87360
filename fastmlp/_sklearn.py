"""scikit-learn's estimator base classes when it is installed, and a stand-in when it is not.

With scikit-learn the estimator inherits ``ClassifierMixin`` and ``BaseEstimator`` and is a real
scikit-learn classifier; without it, :class:`ParamsBase` gives it the same ``get_params``,
``set_params`` and ``repr``.
"""
import inspect

__all__ = ["BASES", "HAVE_SKLEARN", "DataConversionWarning", "ParamsBase", "SkNotFittedError"]

try:  # scikit-learn is optional: inherit its base classes only when it is installed.
    from sklearn.base import BaseEstimator as SkBaseEstimator
    from sklearn.base import ClassifierMixin as SkClassifierMixin
    from sklearn.exceptions import DataConversionWarning
    from sklearn.exceptions import NotFittedError as SkNotFittedError
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    HAVE_SKLEARN = False

    class DataConversionWarning(UserWarning):
        """Input data was converted (for example a column-vector ``y`` was flattened)."""

    class SkNotFittedError(ValueError, AttributeError):
        pass


class ParamsBase:
    """``get_params`` / ``set_params`` for when scikit-learn is not installed."""

    @classmethod
    def _get_param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p for p in signature.parameters if p != "self")

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {valid}.")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (defaults[k].default is v or
                           (type(defaults[k].default) is type(v) and defaults[k].default == v))]
        return f"{type(self).__name__}({', '.join(changed)})"


#: The base classes of the estimator.
BASES = (SkClassifierMixin, SkBaseEstimator) if HAVE_SKLEARN else (ParamsBase,)
