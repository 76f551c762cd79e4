"""MADE: masked autoencoder for distribution estimation (Germain et al., 2015).

Each input variable i gets a degree m(i) in {1, ..., D} (its position in the
autoregressive order, plus one). Hidden unit k of layer l gets a degree
m^l(k) in {1, ..., D - 1}, and the weight matrices are multiplied by masks

    hidden:  M^l[k, k'] = 1  iff  m^l(k') >= m^{l-1}(k),
    output:  M^out[k, i] = 1  iff  m(i) > m^L(k),

so that output i is a function of the inputs j with m(j) < m(i) only
(Germain et al., 2015). Germain et al. draw hidden degrees at random; here
they are assigned deterministically and cyclically, m^l(k) = (k mod (R - 1)) + 1
with R the number of distinct input degrees, which uses every degree whenever
a layer is at least R - 1 wide. R = D for a permutation; degrees may also tie
(``rank_degrees``): variables of one rank form a block that sees only lower
ranks -- a block-autoregressive network, whose inverse takes R passes, not D.

The network returns ``k`` parameters per variable, ``[..., D, k]``: the
conditioner of MAF, IAF and autoregressive spline flows. Those call it with
the batch axes last, x ``[D, ...]`` to ``[k, D, ...]`` (``batch_last``),
and for the variables of one rank at a time (``outputs``): the same
numbers, with only the output units asked for computed.

An optional context vector h (IAF's encoder output, Kingma et al., 2016,
"Improved Variational Inference with Inverse Autoregressive Flow", Sec. 4)
enters the first hidden layer through an unmasked dense map,

    a^1 = x (W^1 * M^1) + b^1 + h V,

so every output may depend on all of h while the masks still keep output i
off the inputs j with m(j) >= m(i). Without a context the network and its
parameters are exactly those of plain MADE.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def input_degrees(order: Sequence[int]) -> np.ndarray:
    """Degrees ``order + 1`` of the inputs; ``order`` must be a permutation of ``0..D-1``."""
    order = np.asarray(order, dtype=np.int32)
    if sorted(order.tolist()) != list(range(order.size)):
        raise ValueError(f"order must be a permutation of 0..{order.size - 1}, "
                         f"got {order.tolist()}")
    return order + 1


def rank_degrees(order: Sequence[int]) -> np.ndarray:
    """Degrees ``order + 1`` of inputs whose ranks may tie (block-autoregressive).

    ``order`` must take every value ``0..R-1`` (R <= D) and no other; variables
    of equal rank do not see each other. A permutation (R = D) is plain MADE.
    """
    order = np.asarray(order, dtype=np.int32)
    if order.size == 0 or sorted(set(order.tolist())) != list(range(int(order.max()) + 1)):
        raise ValueError(f"order must take every value 0..R-1 for some R (ties allowed), "
                         f"got {order.tolist()}")
    return order + 1


def hidden_degrees(num_ranks: int, width: int) -> np.ndarray:
    """Cyclic degrees ``(k mod (R - 1)) + 1`` of a hidden layer of ``width`` units."""
    return np.arange(width) % max(num_ranks - 1, 1) + 1


def made_masks(order: Sequence[int], hidden: Sequence[int], num_params: int) -> list[np.ndarray]:
    """The 0/1 masks ``[fan_in, fan_out]`` of every layer, output layer last.

    The output layer has ``D * num_params`` units, unit ``i * num_params + p``
    being parameter p of variable i. ``order`` may tie (``rank_degrees``).
    """
    degrees_in = rank_degrees(order)
    num_ranks = int(degrees_in.max())
    masks, previous = [], degrees_in
    for width in hidden:
        current = hidden_degrees(num_ranks, width)
        masks.append((current[None, :] >= previous[:, None]).astype(np.float32))
        previous = current
    out = np.repeat(degrees_in, num_params)
    masks.append((out[None, :] > previous[:, None]).astype(np.float32))
    return masks


def take_indices(a: jax.Array, indices: Union[Sequence[int], jax.Array], axis: int = 0
                 ) -> jax.Array:
    """``a``'s entries ``indices`` along ``axis``: for static increasing indices evenly spaced
    (one variable, a block of consecutive ones, every b-th) a strided slice, else a gather
    (``indices`` may then be a traced integer array)."""
    if isinstance(indices, jax.Array):
        return jnp.take(a, indices, axis=axis, mode="clip")
    indices = np.asarray(indices)
    step = int(indices[1] - indices[0]) if indices.size > 1 else 1
    if step > 0 and np.all(np.diff(indices) == step):
        return jax.lax.slice_in_dim(a, int(indices[0]), int(indices[-1]) + 1, step, axis)
    return jnp.take(a, indices, axis=axis)


class MaskedDense(nn.Module):
    """``y = x (W * M) + b`` with a fixed 0/1 mask ``M`` of shape ``[fan_in, fan_out]``."""

    mask: np.ndarray
    kernel_init: Callable = nn.linear.default_kernel_init

    def setup(self):
        self.kernel = self.param("kernel", self.kernel_init, self.mask.shape)
        self.bias = self.param("bias", nn.initializers.zeros, self.mask.shape[1:])

    def weights(self, dtype) -> Tuple[jax.Array, jax.Array]:
        """The masked kernel ``W * M [fan_in, fan_out]`` and the bias ``b [fan_out]``."""
        return (self.kernel.astype(dtype) * jnp.asarray(self.mask, dtype),
                self.bias.astype(dtype))

    def __call__(self, x: jax.Array, axis: int = -1) -> jax.Array:
        """x's ``axis`` (of size fan_in) through the layer; the output's last axis is
        fan_out, after x's other axes (``[..., fan_in] -> [..., fan_out]`` for the last)."""
        kernel, bias = self.weights(x.dtype)
        return jnp.tensordot(x, kernel, axes=(axis, 0)) + bias


class MADE(nn.Module):
    """Autoregressive network ``[..., D] -> [..., D, num_params]``.

    Attributes:
      order: ``order[i]`` is the position of variable i in the autoregressive
        order (a permutation of ``0..D-1``, or ranks ``0..R-1`` with ties for a
        block-autoregressive network); output i depends on input j only if
        ``order[j] < order[i]``.
      hidden: widths of the hidden layers.
      num_params: parameters per variable.
      activation: nonlinearity between layers.
      zero_init_last: start the output layer at zero (flows start at identity).
    """

    order: Sequence[int]
    hidden: Sequence[int] = (32, 32)
    num_params: int = 2
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    zero_init_last: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, context: Optional[jax.Array] = None,
                 batch_last: bool = False,
                 outputs: Optional[Union[Sequence[int], jax.Array]] = None) -> jax.Array:
        """Output ``[..., D, num_params]`` for x ``[..., D]``; ``context [..., C]``
        (leading axes broadcasting against x's batch axes) joins the first hidden layer.

        With ``batch_last`` x is ``[D, ...]`` and the output ``[num_params, D, ...]``:
        the same numbers with the batch axes last, the layout in which elementwise
        transformers work on whole slabs of a batch (``MaskedAutoregressive``).
        ``outputs`` (variable indices; a static increasing sequence, or a traced integer
        array) computes the parameters of those variables alone, in place of all D.
        """
        dim = len(self.order)
        masks = made_masks(self.order, self.hidden, self.num_params)
        if context is not None and not self.hidden:
            raise ValueError("a context needs at least one hidden layer to enter")
        last_init = nn.initializers.zeros if self.zero_init_last else nn.linear.default_kernel_init
        hidden_layers = [MaskedDense(mask) for mask in masks[:-1]]
        output_layer = MaskedDense(masks[-1], kernel_init=last_init)
        axis = 0 if batch_last else x.ndim - 1  # x's variable axis
        for i, (layer, width) in enumerate(zip(hidden_layers, self.hidden)):
            x = layer(x, axis)  # [..., width]
            axis = x.ndim - 1
            if i == 0 and context is not None:  # unmasked: every unit may see all of h
                x = x + nn.Dense(width, use_bias=False, name="context", dtype=x.dtype)(context)
            x = self.activation(x)
        kernel, bias = output_layer.weights(x.dtype)  # unit i * num_params + p: variable i
        kernel = kernel.reshape(-1, dim, self.num_params)
        bias = bias.reshape(dim, self.num_params)
        if outputs is not None:
            kernel, bias = take_indices(kernel, outputs, axis=1), take_indices(bias, outputs)
        if batch_last:  # [num_params, D, ...]
            out = jnp.tensordot(jnp.transpose(kernel, (0, 2, 1)), x, axes=(0, axis))
            return out + bias.T.reshape(bias.T.shape + (1,) * (out.ndim - 2))
        return jnp.tensordot(x, kernel, axes=(axis, 0)) + bias  # [..., D, num_params]
