# dl's minibatch training (docs/language.md §3.5), for the references of
# the examples that use it (iris.py, digits.py): each epoch visits the rows
# in an order that starts from the identity and is shuffled by
# Fisher-Yates with one xoshiro256** generator (tests/e2e/ref/rng.py)
# seeded by `shuffle` when the train starts; its batches are consecutive
# slices of that order (the last one smaller); one optimizer step per
# batch, on the .dl's loss of that batch's rows. The log line of an epoch
# is the mean of its batch losses (each .item(), summed in double), rounded
# to the working precision.
import os, sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e", "ref"))
from rng import Xoshiro


def shuffled(g, n):  # one epoch's order: Fisher-Yates on the identity
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(((g.next() >> 11) * 2.0**-53) * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


def train(opt, loss_fn, data, epochs, batch, shuffle, log_every, dtype):
    """loss_fn(*rows of each tensor in data) for every batch of every epoch."""
    n = data[0].shape[0]
    g = Xoshiro(shuffle)
    for epoch in range(epochs):
        order = torch.tensor(shuffled(g, n))
        losses = []
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            opt.zero_grad()
            loss = loss_fn(*(t[idx] for t in data))
            losses.append(loss.item())
            loss.backward()
            opt.step()
        if epoch % log_every == log_every - 1:
            print(epoch, torch.tensor(sum(losses) / len(losses), dtype=dtype).item())
