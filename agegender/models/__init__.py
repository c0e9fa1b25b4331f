"""Backbones (a registry), heads, the age/gender network and model folders.

The names below load on first use: ``agegender.models.folder`` (config.json, read by the ONNX runtime) must not
import torch through the network modules.
"""

from agegender.utils.lazy import lazy_exports

_EXPORTS = {
    "AgeGenderNet": "agegender.models.model",
    "ModelConfig": "agegender.models.model",
    "build_model": "agegender.models.model",
    "create_backbone": "agegender.models.registry",
    "list_backbones": "agegender.models.registry",
    "register_backbone": "agegender.models.registry",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
