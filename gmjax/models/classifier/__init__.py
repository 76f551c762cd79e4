"""The in-repo feature network: a classifier whose features image metrics compare.

``networks`` builds the classifier a config names (``CLASSIFIERS``: ``lenet``),
``training`` is its loss and held-out evaluation, ``feature_network`` wraps a
trained one as a feature map (``FeatureNetwork``), and ``loading`` reads one
back from a classifier run's workdir (``load_feature_network``).
"""

from gmjax.models.classifier.feature_network import FeatureNetwork, predict_in_batches
from gmjax.models.classifier.loading import FeatureNetworkError, load_feature_network, train_hint
from gmjax.models.classifier.networks import CLASSIFIERS, IMAGE_SHAPES, build_classifier
from gmjax.models.classifier.training import classifier_loss, evaluate_classifier

__all__ = ["CLASSIFIERS", "IMAGE_SHAPES", "FeatureNetwork", "FeatureNetworkError",
           "build_classifier", "classifier_loss", "evaluate_classifier", "load_feature_network",
           "predict_in_batches", "train_hint"]
