"""Normalizing flows as distrax bijectors, parameters owned by Flax modules."""

from gmjax.flows.coupling import affine_coupling, half_mask
from gmjax.flows.realnvp import RealNVP

__all__ = ["affine_coupling", "half_mask", "RealNVP"]
