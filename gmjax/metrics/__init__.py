"""Sample-quality and likelihood metrics: pure functions of arrays.

Two-sample distances (`two_sample`, `sliced`, `kernels`, `pairwise`), the MMD
permutation test (`permutation`), mode coverage for mixture targets (`modes`),
likelihood summaries (`likelihood`), MCMC diagnostics (`mcmc`) and feature-space
image metrics: the Fréchet distance (`frechet`), KID (`kid`), k-NN precision /
recall (`precision_recall`) and density / coverage (`density_coverage`) on
k-NN balls (`neighbors`), and the Inception Score and class accuracy
(`class_probabilities`). The feature network those take features from is a
classifier trained in-repo (`gmjax.models.classifier`), so FID, KID and IS
here are analogues, comparable only between runs with one feature network. `METRICS`
maps the result-file names `mmd`, `energy_distance` and `sliced_wasserstein`
to functions called as metric(x, y, key).
"""

from gmjax.metrics.class_probabilities import class_accuracy, inception_score
from gmjax.metrics.density_coverage import DensityCoverage, density_coverage
from gmjax.metrics.frechet import frechet_distance, frechet_distance_gaussians, gaussian_moments
from gmjax.metrics.kid import kid, polynomial_kernel, polynomial_mmd2
from gmjax.metrics.neighbors import DEFAULT_NUM_NEIGHBORS, knn_radii
from gmjax.metrics.precision_recall import PrecisionRecall, precision_recall
from gmjax.metrics.results import MeanStd
from gmjax.metrics.kernels import median_heuristic, rbf_kernel
from gmjax.metrics.likelihood import (
    bits_per_dim,
    bits_to_nats,
    is_log_likelihood,
    is_log_likelihood_per_example,
    nats_to_bits,
    nll_excess,
)
from gmjax.metrics.mcmc import effective_sample_size, split_chains, split_rhat
from gmjax.metrics.modes import DEFAULT_NUM_SAMPLES, ModeMetrics, mode_metrics
from gmjax.metrics.pairwise import pair_sum, squared_distances
from gmjax.metrics.replicates import adjusted_distances
from gmjax.metrics.permutation import PermutationTestResult, mmd_permutation_test
from gmjax.metrics.sliced import random_directions, sliced_wasserstein, wasserstein_1d
from gmjax.metrics.transport import wasserstein_exact
from gmjax.metrics.weights import importance_weight_trace
from gmjax.metrics.two_sample import (
    DEFAULT_BANDWIDTH_SCALES,
    METRICS,
    adjusted,
    adjusted_mmd,
    adjusted_w1,
    energy_distance,
    mmd_median,
    mmd_rbf,
    mmd_rbf_mixture,
)

__all__ = [
    "DEFAULT_NUM_NEIGHBORS",
    "DensityCoverage",
    "MeanStd",
    "PrecisionRecall",
    "class_accuracy",
    "density_coverage",
    "frechet_distance",
    "frechet_distance_gaussians",
    "gaussian_moments",
    "importance_weight_trace",
    "inception_score",
    "kid",
    "knn_radii",
    "polynomial_kernel",
    "polynomial_mmd2",
    "precision_recall",
    "DEFAULT_BANDWIDTH_SCALES",
    "DEFAULT_NUM_SAMPLES",
    "METRICS",
    "ModeMetrics",
    "PermutationTestResult",
    "adjusted",
    "adjusted_distances",
    "adjusted_mmd",
    "adjusted_w1",
    "bits_per_dim",
    "bits_to_nats",
    "effective_sample_size",
    "energy_distance",
    "is_log_likelihood",
    "is_log_likelihood_per_example",
    "median_heuristic",
    "mmd_median",
    "mmd_permutation_test",
    "mmd_rbf",
    "mmd_rbf_mixture",
    "mode_metrics",
    "nats_to_bits",
    "nll_excess",
    "pair_sum",
    "random_directions",
    "rbf_kernel",
    "sliced_wasserstein",
    "split_chains",
    "split_rhat",
    "squared_distances",
    "wasserstein_1d",
    "wasserstein_exact",
]
