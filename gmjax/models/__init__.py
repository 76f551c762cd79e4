"""One module per family, tying nets, objectives and sampling together."""

from gmjax.models.classifier import (CLASSIFIERS, FeatureNetwork, FeatureNetworkError,
                                     build_classifier, load_feature_network)
from gmjax.models.flow import build_flow
from gmjax.models.image_metrics import image_metrics
from gmjax.models.vae import VAE, VAE_MODELS, VAE_NETS, build_objective, build_vae

__all__ = ["CLASSIFIERS", "FeatureNetwork", "FeatureNetworkError",
           "build_classifier", "build_flow", "image_metrics", "load_feature_network",
           "VAE", "VAE_MODELS", "VAE_NETS", "build_objective", "build_vae"]
