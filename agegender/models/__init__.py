"""Backbones (a registry), heads, the age/gender network and model folders."""

from agegender.models.model import AgeGenderNet, ModelConfig, build_model
from agegender.models.registry import create_backbone, list_backbones, register_backbone

__all__ = ["AgeGenderNet", "ModelConfig", "build_model", "create_backbone", "list_backbones", "register_backbone"]
