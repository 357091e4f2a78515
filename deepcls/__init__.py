"""deepcls: ResNet and VGG on MNIST and CIFAR-10, reproducing and extending a reference report."""

__version__ = "0.1.0"
