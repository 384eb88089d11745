"""Activation checkpointing over time steps changes memory, never results; the byte counter."""

import pytest
import torch

from convlstm_lib import ConvLSTM, EncoderForecaster, NextFramePredictor, saved_tensor_bytes


def _stack_loss(model, x):
    outputs, states = model(x)
    return outputs[-1].pow(2).mean() + sum(c.sum() for _, c in states)


def _forecaster_loss(model, x):
    return model(x, 3).pow(2).mean()


def _losses_and_grads(build, loss_of, checkpoint_steps):
    torch.manual_seed(0)
    model = build(checkpoint_steps)
    x = torch.rand(2, 4, 2, 6, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    torch.manual_seed(2)  # the dropout masks
    loss = loss_of(model, x)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters()}, x.grad


BUILDS = {
    "stack, folded input": lambda ck: ConvLSTM(
        2, [4, 3], 3, precompute_input=False, checkpoint_steps=ck
    ),
    "stack, batched input": lambda ck: ConvLSTM(
        2, [4, 3], 3, precompute_input=True, checkpoint_steps=ck
    ),
    "stack, peephole, dropout, 5x3": lambda ck: ConvLSTM(
        2,
        [3, 4],
        [(5, 3), 3],
        peephole=True,
        dropout=0.3,
        recurrent_dropout=0.2,
        checkpoint_steps=ck,
    ),
    "stack, channels_last, time first": lambda ck: ConvLSTM(
        2, 4, 3, channels_last=True, batch_first=False, checkpoint_steps=ck
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_checkpointing_the_steps_gives_the_same_loss_and_gradients(name):
    plain = _losses_and_grads(BUILDS[name], _stack_loss, False)
    checkpointed = _losses_and_grads(BUILDS[name], _stack_loss, True)
    torch.testing.assert_close(checkpointed, plain)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_checkpointing_the_encoder_forecaster_gives_the_same_loss_and_gradients(dropout):
    def build(ck):
        return EncoderForecaster(
            2,
            [4, 3],
            input_kernel_sizes=3,
            state_kernel_sizes=[3, 1],
            dropout=dropout,
            recurrent_dropout=dropout,
            checkpoint_steps=ck,
        )

    plain = _losses_and_grads(build, _forecaster_loss, False)
    checkpointed = _losses_and_grads(build, _forecaster_loss, True)
    torch.testing.assert_close(checkpointed, plain)


def test_checkpointing_keeps_less_for_backward_and_nothing_in_inference():
    x = torch.rand(3, 8, 1, 12, 12)
    saved = {}
    for ck in (False, True):
        torch.manual_seed(0)
        model = ConvLSTM(1, [8, 8], 3, checkpoint_steps=ck)
        saved[ck] = saved_tensor_bytes(
            lambda m=model: _stack_loss(m, x), exclude=model.parameters()
        )
        with torch.no_grad():
            assert saved_tensor_bytes(lambda m=model: _stack_loss(m, x)) == 0
    # Checkpointed, a step keeps its frame, h and c: (1 + 8 + 8) channels per layer-0 step and
    # about as much in layer 1, far less than every gate of every step.
    assert saved[True] < saved[False] / 2


def test_checkpointing_keeps_exactly_each_steps_inputs():
    # One layer, input folded into the steps: what stays for backward is the input sequence,
    # and every step's h (but the first, a zero state that is never materialised) and c.
    batch, steps, hidden, size = 2, 5, 4, 6
    model = ConvLSTM(1, hidden, 3, checkpoint_steps=True)
    x = torch.rand(batch, steps, 1, size, size)
    saved = saved_tensor_bytes(lambda: model(x)[0][0].sum(), exclude=model.parameters())
    state = batch * hidden * size * size * 4  # one float32 h or c
    assert saved == x.nbytes + (steps - 1) * state + steps * state


def test_inference_with_checkpointing_is_the_plain_path():
    torch.manual_seed(0)
    plain = ConvLSTM(1, [4, 4], 3)
    checkpointed = ConvLSTM(1, [4, 4], 3, checkpoint_steps=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(2, 6, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(checkpointed(x), plain(x), rtol=0, atol=0)


def test_checkpointing_trains_a_predictor_like_the_plain_model():
    def train(ck):
        torch.manual_seed(0)
        model = NextFramePredictor(ConvLSTM(1, [4, 1], 3, checkpoint_steps=ck))
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        x = torch.rand(4, 5, 1, 8, 8, generator=torch.Generator().manual_seed(3))
        for _ in range(3):
            loss = (model(x[:, :-1]) - x[:, -1]).pow(2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return model.state_dict()

    torch.testing.assert_close(train(True), train(False))


def test_the_option_shows_in_repr_only_when_set():
    assert "checkpoint_steps" not in repr(ConvLSTM(1, 2))
    assert "precompute_input=None, checkpoint_steps=True" in repr(
        ConvLSTM(1, 2, checkpoint_steps=True)
    )
    assert "peephole=True, checkpoint_steps=True" in repr(
        EncoderForecaster(1, 2, checkpoint_steps=True)
    )


def test_saved_bytes_count_each_storage_once_and_only_while_alive():
    a = torch.rand(256, requires_grad=True)
    assert saved_tensor_bytes(lambda: a * a) == a.nbytes
    # Views of one storage: the storage counts once.
    assert saved_tensor_bytes(lambda: [a[:128] * a[128:]]) == a.nbytes

    def dropped_before_the_end():
        a.exp()  # saves its result, freed with this part of the graph when the line ends
        return a.sin()  # saves a

    assert saved_tensor_bytes(dropped_before_the_end) == a.nbytes
    assert saved_tensor_bytes(lambda: a * 2, exclude=[a]) == 0
