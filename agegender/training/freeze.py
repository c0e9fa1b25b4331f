"""Partial fine-tuning: train only named stages; frozen BatchNorm layers stay in eval mode."""

from __future__ import annotations

from torch import nn

from agegender.errors import ConfigError

HEAD_MODULES = ("neck", "age_head", "gender_head")


def _prefixes(net: nn.Module, spec: str) -> list[str]:
    if spec == "head":
        return [f"{m}." for m in HEAD_MODULES]
    names = [n for n, _ in net.named_parameters()]
    for cand in (f"backbone.{spec}.", f"{spec}."):
        if any(n.startswith(cand) for n in names):
            return [cand]
    children = ", ".join(n for n, _ in net.backbone.named_children())
    raise ConfigError(f"trainable stage {spec!r} matches no parameters; backbone stages: {children}, or 'head'")


def apply_trainable(net: nn.Module, specs: list[str]) -> int:
    """Set requires_grad from stage names (e.g. ``["layer3", "layer4", "head"]``); returns #trainable."""
    if "all" in specs:
        for p in net.parameters():
            p.requires_grad_(True)
    else:
        prefixes = [p for s in specs for p in _prefixes(net, s)]
        for name, p in net.named_parameters():
            p.requires_grad_(any(name.startswith(x) for x in prefixes))
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def freeze_batchnorm_stats(net: nn.Module) -> None:
    """Put BatchNorm layers whose parameters are all frozen into eval mode (keep running statistics)."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
