"""Flax linen networks shared by the model families."""

from gmjax.nets.conv import CouplingConvNet
from gmjax.nets.gan_mlp import MinibatchDiscrimination, MLPCritic, MLPGenerator
from gmjax.nets.lenet import LeNet
from gmjax.nets.made import MADE
from gmjax.nets.mlp import MLP
from gmjax.nets.time_mlp import TimeMLP, sinusoidal_embedding
from gmjax.nets.unet import UNet
from gmjax.nets.vae import (ConvDecoder, ConvEncoder, DecoderOutput, Encoding, MLPDecoder,
                            MLPEncoder)

__all__ = ["ConvDecoder", "ConvEncoder", "CouplingConvNet", "DecoderOutput", "Encoding", "LeNet",
           "MADE", "MLP", "MLPCritic", "MLPDecoder", "MLPEncoder", "MLPGenerator",
           "MinibatchDiscrimination", "TimeMLP", "UNet", "sinusoidal_embedding"]
