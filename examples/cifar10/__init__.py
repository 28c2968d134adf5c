"""The CIFAR-10 pruning example: input, model, train, eval, main job."""
