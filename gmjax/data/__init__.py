"""Data sets as numpy arrays: toy 2-D densities, sklearn digits, MNIST and Fashion-MNIST,
sklearn's tabular wine and breast cancer.

``load_dataset(name, split)`` is the entry point; ``BatchIterator`` turns a
data set into a seeded, restartable stream of batches; ``transforms`` holds
the pixel pre-processing used inside losses. Nothing here downloads data.
"""

from gmjax.data.digits import load_digits
from gmjax.data.idx import IDXFormatError, read_idx, write_idx
from gmjax.data.images import (
    DatasetNotFoundError,
    load_fashion_mnist,
    load_image_dataset,
    load_mnist,
)
from gmjax.data.iterator import BatchIterator, stack_batches, take_batches
from gmjax.data.registry import DATASETS, Dataset, load_dataset
from gmjax.data.splits import SplitSpec, parse_split
from gmjax.data.tabular import load_tabular
from gmjax.data.toy import (
    TOY_DENSITIES,
    Checkerboard,
    ClosedFormDensity,
    GaussianMixture2D,
    RingMixture2D,
    ToyDensity,
)
from gmjax.data.transforms import (
    binarize_dynamic,
    binarize_static,
    dequantize_uniform,
    inverse_logit_transform,
    logit_transform,
    scale_uint8,
)

__all__ = [
    "BatchIterator",
    "Checkerboard",
    "ClosedFormDensity",
    "DATASETS",
    "Dataset",
    "DatasetNotFoundError",
    "GaussianMixture2D",
    "IDXFormatError",
    "RingMixture2D",
    "SplitSpec",
    "TOY_DENSITIES",
    "ToyDensity",
    "binarize_dynamic",
    "binarize_static",
    "dequantize_uniform",
    "inverse_logit_transform",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_dataset",
    "load_mnist",
    "load_tabular",
    "logit_transform",
    "parse_split",
    "read_idx",
    "scale_uint8",
    "stack_batches",
    "take_batches",
    "write_idx",
]
