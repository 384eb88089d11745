"""Time ConvLSTM training steps and inference: a plain reference, the library's paths, Keras.

Run from the repository root (``make bench``)::

    python -m benchmarks.run            # the full benchmark, a few minutes on 2 cores
    python -m benchmarks.run --tiny     # a smoke run of a few seconds, for the tests

Every variant runs on the same inputs, in interleaved rounds (one step of each variant per
round) so that a load spike on a shared machine hits all of them alike; each number is the
median over the rounds. The results go to ``benchmarks/results/bench.md`` and ``bench.json``.

FLOP counting, explicit: only the convolutions count (the gate math is a few elementwise
operations per output value, under 1% of the arithmetic here). A "same" convolution from
``c_in`` to ``c_out`` channels with a ``kh x kw`` kernel on ``B`` frames of ``H x W`` costs
``2 * B * H * W * c_out * c_in * kh * kw`` FLOPs (one multiply and one add per weight per output
pixel). One ConvLSTM step of a layer is one such convolution from ``C_in + C_hid`` to
``4 C_hid`` channels. A variant that skips the recurrent half of the first step (its state is
zeros) is credited only with what it computes. A training step counts three times the forward
convolutions (forward, gradient of the input, gradient of the weight) and ignores the loss and
the optimizer, as is usual. GFLOP/s is that count divided by the measured time; the peak beside
it is a large square matrix product measured in the same run, the best a dense kernel reaches
on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlstm_lib import ConvLSTM

__all__ = [
    "CONFIGS",
    "TINY_CONFIGS",
    "Config",
    "ReferenceConvLSTM",
    "conv_flops",
    "main",
    "markdown_table",
    "matmul_peak",
    "run_benchmark",
]

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Config:
    """One benchmarked problem: a ConvLSTM stack and the batch it trains on."""

    name: str
    batch: int
    steps: int
    input_dim: int
    hidden_dims: tuple[int, ...]
    kernel_size: int
    size: int  # frames are size x size


CONFIGS = [
    # The post's beam recipe: 100 sequences of 5 frames, 24 x 24, hidden 64 then 1, 3 x 3.
    Config("beam", batch=100, steps=5, input_dim=1, hidden_dims=(64, 1), kernel_size=3, size=24),
    # Moving-MNIST-sized: 64 x 64 frames, one layer of 64 channels, 5 x 5 kernels.
    Config("mnist", batch=4, steps=10, input_dim=1, hidden_dims=(64,), kernel_size=5, size=64),
]
TINY_CONFIGS = [
    Config("tiny", batch=4, steps=3, input_dim=1, hidden_dims=(8, 1), kernel_size=3, size=12),
]


class ReferenceConvLSTM(nn.Module):
    """The plain baseline: one NCHW float32 convolution over ``cat([x, h])`` per step and layer.

    Written here, independently of ``convlstm_lib``, as the straightforward implementation a
    reader would write first. Takes ``(B, T, C_in, H, W)`` and returns the last layer's final
    hidden state, of shape ``(B, C_hid, H, W)``.
    """

    def __init__(self, input_dim: int, hidden_dims: tuple[int, ...], kernel_size: int) -> None:
        super().__init__()
        in_dims = [input_dim, *hidden_dims[:-1]]
        self.hidden_dims = hidden_dims
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in + c_hid, 4 * c_hid, kernel_size, padding="same")
            for c_in, c_hid in zip(in_dims, hidden_dims, strict=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, steps, _, height, width = x.shape
        for conv, c_hid in zip(self.convs, self.hidden_dims, strict=True):
            h = x.new_zeros(batch, c_hid, height, width)
            c = torch.zeros_like(h)
            outputs = []
            for t in range(steps):
                gates = conv(torch.cat([x[:, t], h], dim=1))  # (B, 4 C_hid, H, W)
                i, f, g, o = gates.chunk(4, dim=1)  # each (B, C_hid, H, W)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)  # (B, T, C_hid, H, W)
        return h


def conv_flops(config: Config, *, skip_first_recurrent: bool) -> int:
    """Forward convolution FLOPs of one sequence batch (see the module docstring)."""
    total = 0
    in_dims = [config.input_dim, *config.hidden_dims[:-1]]
    per_pixel = config.batch * config.size * config.size * config.kernel_size**2 * 2
    for c_in, c_hid in zip(in_dims, config.hidden_dims, strict=True):
        total += per_pixel * 4 * c_hid * (c_in + c_hid) * config.steps
        if skip_first_recurrent:
            total -= per_pixel * 4 * c_hid * c_hid
    return total


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a ``size x size`` matrix product in ``dtype``, the median of ``repeats``."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    return 2 * size**3 / _median_time(lambda: a @ b, repeats) / 1e9


@dataclass
class _Variant:
    name: str
    make: Callable[[Config], tuple[Callable[[], None], Callable[[], None]]]
    skip_first_recurrent: bool = False


def _torch_variant(
    name: str,
    build: Callable[[Config], nn.Module],
    *,
    bf16: bool = False,
    skip_first_recurrent: bool = False,
) -> _Variant:
    """A variant whose model maps ``(B, T, C_in, H, W)`` to the last final hidden state."""

    def make(config: Config) -> tuple[Callable[[], None], Callable[[], None]]:
        torch.manual_seed(0)
        model = build(config)
        x = torch.rand(config.batch, config.steps, config.input_dim, config.size, config.size)
        y = torch.rand(config.batch, config.hidden_dims[-1], config.size, config.size)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.mse_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def infer() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)

        return train, infer

    return _Variant(name, make, skip_first_recurrent)


class _LastHidden(nn.Module):
    """The library's ConvLSTM returning the last layer's final hidden state, as the post does."""

    def __init__(self, model: ConvLSTM) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        _, last_states = self.model(x)
        return last_states[-1][0]


def _library(**options: object) -> Callable[[Config], nn.Module]:
    def build(config: Config) -> nn.Module:
        model = ConvLSTM(config.input_dim, list(config.hidden_dims), config.kernel_size, **options)
        return _LastHidden(model)

    return build


def _keras_variant() -> _Variant:
    def make(config: Config) -> tuple[Callable[[], None], Callable[[], None]]:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras  # late: the backend must be chosen first

        if keras.backend.backend() != "torch":
            raise RuntimeError(f"keras: expected the torch backend, got {keras.backend.backend()}")
        keras.utils.set_random_seed(0)
        layers = [keras.Input((config.steps, config.size, config.size, config.input_dim))]
        for index, c_hid in enumerate(config.hidden_dims):
            last = index == len(config.hidden_dims) - 1
            layers.append(
                keras.layers.ConvLSTM2D(
                    c_hid, config.kernel_size, padding="same", return_sequences=not last
                )
            )
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        # Keras wants channels last: (B, T, H, W, C).
        x = torch.rand(config.batch, config.steps, config.size, config.size, config.input_dim)
        y = torch.rand(config.batch, config.size, config.size, config.hidden_dims[-1])

        def train() -> None:
            model.train_on_batch(x, y)

        def infer() -> None:
            model.predict_on_batch(x)

        return train, infer

    return _Variant("keras ConvLSTM2D (torch backend)", make)


def _variants(*, compile_: bool, keras_: bool) -> list[_Variant]:
    variants = [
        _torch_variant(
            "reference (cat conv, NCHW, fp32)",
            lambda c: ReferenceConvLSTM(c.input_dim, c.hidden_dims, c.kernel_size),
        ),
        _torch_variant(
            "library, every switch off",
            _library(channels_last=False, precompute_input=False),
        ),
        _torch_variant("channels_last only", _library(channels_last=True, precompute_input=False)),
        _torch_variant(
            "precompute_input only",
            _library(channels_last=False, precompute_input=True),
            skip_first_recurrent=True,
        ),
        _torch_variant(
            "channels_last + precompute_input",
            _library(channels_last=True, precompute_input=True),
            skip_first_recurrent=True,
        ),
        _torch_variant("library default (fp32)", _library(), skip_first_recurrent=True),
        _torch_variant(
            "library default + autocast bf16", _library(), bf16=True, skip_first_recurrent=True
        ),
        _torch_variant(
            "channels_last + precompute_input + autocast bf16",
            _library(channels_last=True, precompute_input=True),
            bf16=True,
            skip_first_recurrent=True,
        ),
    ]
    if compile_:
        variants += [
            _torch_variant(
                "library default + fuse_gates (fp32)",
                _library(fuse_gates=True),
                skip_first_recurrent=True,
            ),
            _torch_variant(
                "library default + fuse_gates + autocast bf16",
                _library(fuse_gates=True),
                bf16=True,
                skip_first_recurrent=True,
            ),
        ]
    if keras_:
        variants.append(_keras_variant())
    return variants


def run_benchmark(
    configs: list[Config],
    *,
    repeats: int = 3,
    compile_: bool = True,
    keras_: bool = True,
    peak_size: int = 2048,
    progress: Callable[[str], None] = print,
) -> dict:
    """Time every variant on every config; return the results as a JSON-ready dict."""
    result = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "mkldnn_bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported(),
            "loadavg_start": os.getloadavg(),
        },
        "peak_gflops": {},
        "rows": [],
    }
    progress("measuring the matrix-product peaks")
    result["peak_gflops"] = {
        "fp32": matmul_peak(torch.float32, peak_size),
        "bf16": matmul_peak(torch.bfloat16, peak_size),
    }
    for config in configs:
        variants = _variants(compile_=compile_, keras_=keras_)
        timers = {}
        for variant in variants:
            progress(f"{config.name}: building and warming up {variant.name}")
            start = time.perf_counter()
            train, infer = variant.make(config)
            train()  # the first call pays one-off costs: compilation, allocator growth
            infer()
            timers[variant.name] = (train, infer, time.perf_counter() - start)
        times = {name: {"train": [], "infer": []} for name in timers}
        for round_ in range(repeats):
            progress(f"{config.name}: round {round_ + 1} of {repeats}")
            for name, (train, infer, _) in timers.items():
                for kind, fn in (("train", train), ("infer", infer)):
                    start = time.perf_counter()
                    fn()
                    times[name][kind].append(time.perf_counter() - start)
        ref = {
            kind: statistics.median(times[variants[0].name][kind]) for kind in ("train", "infer")
        }
        for variant in variants:
            flops = conv_flops(config, skip_first_recurrent=variant.skip_first_recurrent)
            for kind, factor in (("train", 3), ("infer", 1)):
                seconds = statistics.median(times[variant.name][kind])
                result["rows"].append(
                    {
                        "config": asdict(config),
                        "variant": variant.name,
                        "kind": kind,
                        "ms": 1000 * seconds,
                        "ms_all": [1000 * s for s in times[variant.name][kind]],
                        "speedup": ref[kind] / seconds,
                        "gflops": factor * flops / seconds / 1e9,
                        "warmup_s": timers[variant.name][2],
                    }
                )
    result["machine"]["loadavg_end"] = os.getloadavg()
    return result


def markdown_table(result: dict) -> str:
    """The results as a Markdown table, one row per config, variant and kind."""
    peak = result["peak_gflops"]
    lines = [
        f"Matrix-product peak measured in this run: fp32 {peak['fp32']:.0f} GFLOP/s, "
        f"bf16 {peak['bf16']:.0f} GFLOP/s. Load average (1 min) at start "
        f"{result['machine']['loadavg_start'][0]:.2f}, at end "
        f"{result['machine']['loadavg_end'][0]:.2f}, on {result['machine']['threads']} threads.",
        "",
        "| config | variant | step | ms/step (median) | speedup vs reference | GFLOP/s | "
        "% of bf16 peak |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['config']['name']} | {row['variant']} | {row['kind']} | {row['ms']:.1f} | "
            f"{row['speedup']:.2f}x | {row['gflops']:.0f} | "
            f"{100 * row['gflops'] / peak['bf16']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per variant")
    parser.add_argument("--no-compile", action="store_true", help="skip the fuse_gates variants")
    parser.add_argument("--no-keras", action="store_true", help="skip keras.layers.ConvLSTM2D")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where bench.md/.json go")
    args = parser.parse_args(argv)
    configs = TINY_CONFIGS if args.tiny else CONFIGS
    repeats = args.repeats or (2 if args.tiny else 5)
    result = run_benchmark(
        configs,
        repeats=repeats,
        compile_=not (args.tiny or args.no_compile),
        keras_=not args.no_keras,
        peak_size=512 if args.tiny else 2048,
    )
    table = markdown_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.md").write_text(table)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    print(table)
    return result


if __name__ == "__main__":
    main()
