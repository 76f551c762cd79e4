"""TemperFlow (or a baseline) on a Gaussian mixture given in the config: means, scales, weights.

    python experiments/temperflow.py --config experiments/configs/temperflow_mixture.py \
        --workdir runs/temperflow_mixture --config.data.options.weights=0.6,0.3,0.1

The target is ``gaussian_mixture`` (``gmjax.targets.mixtures``): components
``N(means[k], diag(scales[k]^2))`` with weights ``weights[k]`` (normalized).
Change a value on the command line (``--config.data.options.scales=0.4,0.4,0.8``,
``--config.data.options.means="((-3.0, 0.0), (3.0, 0.0), (0.0, 5.0))"``) or
write the mixture in a copy of this file, where ``scales`` may also be a tuple
of tuples (one sd per component and coordinate) and the number of components
and their dimension follow ``means``.
Mode weights are scored against ``weights``, which assumes components far
enough apart that the nearest mean names the component.
"""

import ml_collections

from experiments.configs import temperflow_2d


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_2d.get_config()
    config.data.name = "gaussian_mixture"
    # Three unequal modes, the smallest on its own far from the other two.
    config.data.options.means = ((-4.0, 0.0), (4.0, 0.0), (0.0, 6.0))
    config.data.options.scales = (0.5, 0.5, 0.8)
    config.data.options.weights = (0.5, 0.3, 0.2)
    return config
