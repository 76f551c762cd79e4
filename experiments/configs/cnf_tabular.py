"""Continuous-time flows on sklearn's tabular data sets (default: flow matching on breast cancer).

    python experiments/cnf.py --config experiments/configs/cnf_tabular.py --workdir runs/cnf_bc
    python experiments/cnf.py --config experiments/configs/cnf_tabular.py --workdir runs/cnf_wine \
        --config.data.name=wine
    python experiments/cnf.py --config experiments/configs/cnf_tabular.py --workdir runs/ffjord_bc \
        --config.model.name=ffjord

``wine`` (13 features, 142 training / 36 test examples) and ``breast_cancer``
(30 features, 455 / 114), standardized with the training split's statistics
(``gmjax.data.tabular``). No true density is known: the run reports the test
NLL (nats, standardized coordinates) and, beside it, that of the Gaussian
fitted to the training split (``gaussian_test_nll``). FFJORD trains with
Hutchinson's trace (one Jacobian-vector product per evaluation instead of d);
the test NLL of every model is evaluated with the exact trace.
"""

import ml_collections

from experiments.configs import cnf_toy


def get_config() -> ml_collections.ConfigDict:
    config = cnf_toy.get_config()
    del config.data["num_train"], config.data["num_test"]  # whole splits
    config.data.name = "breast_cancer"  # breast_cancer | wine
    config.data.batch_size = 128
    config.train.steps = 5_000
    config.train.eval_every = 1_000
    config.optim.lr = 1e-3
    config.model.trace = "hutchinson"  # ffjord's training solve
    config.eval.trace = "exact"        # the test NLL: d Jacobian-vector products per evaluation
    return config
