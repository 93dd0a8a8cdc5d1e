"""Models: what the engine needs from any model, and its families.

* ``AbstractModel`` (``base``): the contract — parameter count and names, ``loss(θ)``, its
  gradient and Hessian, initializers and optional theory hooks.
* ``LossModel`` (``base``): any JAX loss (a function of θ, or an equinox model plus data).
* ``Problem`` (``two_layer``): the paper's two-layer network with a single-neuron target.
* ``ReluCNN``, ``PatchData`` (``relu_cnn``): the two-patch ReLU CNN of Shang et al. (2024)
  with both layers trainable, on the signal–noise patch data.
"""

from flowtools.models import network
from flowtools.models.base import AbstractModel, LossModel
from flowtools.models.network import SingleNeuron
from flowtools.models.relu_cnn import PatchData, ReluCNN
from flowtools.models.two_layer import Problem, example1, make_problem

__all__ = ["AbstractModel", "LossModel", "PatchData", "Problem", "ReluCNN", "SingleNeuron",
           "example1", "make_problem", "network"]
