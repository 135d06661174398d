"""idia: the Identity Inference Attack against CLIP-style models, as a reproducible workflow."""

__version__ = "0.1.0"
