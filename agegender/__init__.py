"""agegender: estimate age and gender from face images."""

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):
    if name == "Predictor":  # lazy: importing agegender must stay cheap
        from agegender.inference.predictor import Predictor

        return Predictor
    raise AttributeError(name)
