"""One module per family, tying nets, objectives and sampling together."""

from gmjax.models.flow import FLOW_MODELS, build_flow

__all__ = ["FLOW_MODELS", "build_flow"]
