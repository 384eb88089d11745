"""Time ConvLSTM training steps and inference: a plain reference, the library's paths, Keras.

Run from the repository root (``make bench``)::

    python -m benchmarks.run            # the full benchmark, a few minutes on 2 cores
    python -m benchmarks.run --tiny     # a smoke run of a few seconds, for the tests

Every variant runs on the same inputs, in interleaved rounds (one step of each variant per
round) so that a load spike on a shared machine hits all of them alike; each number is the
median over the rounds. The results go to ``benchmarks/results/bench.md`` and ``bench.json``,
with the date, the processor and the torch version they were measured with; both are committed
(run the full benchmark on an idle machine, then ``python tools/register_files.py``), and the
chapter *Making it fast* shows ``bench.json``.

FLOP counting, explicit: only the convolutions count (the gate math is a few elementwise
operations per output value, under 1% of the arithmetic here). A "same" convolution from
``c_in`` to ``c_out`` channels with a ``kh x kw`` kernel on ``B`` frames of ``H x W`` costs
``2 * B * H * W * c_out * c_in * kh * kw`` FLOPs (one multiply and one add per weight per output
pixel). One ConvLSTM step of a layer is one such convolution from ``C_in + C_hid`` to
``4 C_hid`` channels. A variant that skips the recurrent half of the first step (its state is
zeros) is credited only with what it computes. A training step counts three times the forward
convolutions (forward, gradient of the input, gradient of the weight) and ignores the loss and
the optimizer, as is usual. GFLOP/s is that count divided by the measured time; the peak beside
it is the best of large matrix products measured in the same run (square ``a @ b`` in three sizes,
and a 1x1 convolution, which is a matrix product through oneDNN), each measured before and after
the variants with the better time kept, so that a load spike at one end does not lower it: the
best a dense kernel reaches on this machine.

The ``bound`` row times only the convolutions a training step of the library needs (the input
half for all steps, the recurrent half for every step but the first, forward and both gradients)
in bfloat16 and channels_last, the fastest convolution kernels here, with nothing around them:
no gate math, no copies, no optimizer. Its speedup is the ceiling for any implementation built on
these convolutions.

By default the whole run, reference included, uses :func:`convlstm_lib.keep_freed_memory` (glibc
reuses freed memory instead of mapping every big tensor afresh); ``--system-allocator`` keeps
glibc's defaults.
"""

from __future__ import annotations

import argparse
import datetime
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

from convlstm_lib import ConvLSTM, keep_freed_memory
from convlstm_lib.allocator import _memory_is_kept
from convlstm_lib.plot import markdown_table

__all__ = [
    "CONFIGS",
    "TINY_CONFIGS",
    "Config",
    "ReferenceConvLSTM",
    "conv_flops",
    "dense_peak",
    "main",
    "results_table",
    "run_benchmark",
]

RESULTS = Path(__file__).parent / "results"
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


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


def _cpu_model() -> str:
    """The processor's model name, as the kernel reports it; ``platform`` names only the ISA."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform's answer below is the best there is
    return platform.processor() or platform.machine()


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dense_peak(dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048, 4096)) -> dict:
    """The best GFLOP/s of dense matrix products in ``dtype`` on this machine.

    Times square products ``a @ b`` (MKL or oneDNN, as torch dispatches them) of every size in
    ``sizes``, and a 1x1 channels_last convolution of 64 images of 32 x 32 pixels from
    ``max(sizes) // 4`` to as many channels (the same matrix product through oneDNN's
    convolution kernels). Returns every measurement and their maximum as ``"peak"``.
    """
    measured = {}
    for size in sizes:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        repeats = 3 if size >= 4096 else 5
        measured[f"matmul {size}"] = (
            2 * size**3 / _median_time(lambda a=a, b=b: a @ b, repeats) / 1e9
        )
    channels = max(sizes) // 4
    x = torch.randn(64, channels, 32, 32).to(dtype).contiguous(memory_format=torch.channels_last)
    w = (
        torch.randn(channels, channels, 1, 1)
        .to(dtype)
        .contiguous(memory_format=torch.channels_last)
    )
    seconds = _median_time(lambda: F.conv2d(x, w), 5)
    measured[f"1x1 conv {channels}"] = 2 * 64 * 32 * 32 * channels**2 / seconds / 1e9
    return {"peak": max(measured.values()), **measured}


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


def _library(*, compiled: bool = False, **options: object) -> Callable[[Config], nn.Module]:
    def build(config: Config) -> nn.Module:
        model = ConvLSTM(config.input_dim, list(config.hidden_dims), config.kernel_size, **options)
        # torch.compile of the whole model: the way to fuse the gate math. Static shapes: the
        # configs share the model's code, and dynamo would otherwise retrace the second config
        # with symbolic sizes, which inductor fails to compile for this model (torch 2.14).
        if compiled:
            return torch.compile(_LastHidden(model), dynamic=False)
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


def _bound_variant() -> _Variant:
    """Only the convolutions of one library training step, bf16 channels_last (module docstring)."""

    def make(config: Config) -> tuple[Callable[[], None], Callable[[], None]]:
        torch.manual_seed(0)

        def frames(count: int, channels: int, *, grad: bool) -> Tensor:
            t = torch.randn(count, channels, config.size, config.size, dtype=torch.bfloat16)
            return t.contiguous(memory_format=torch.channels_last).requires_grad_(grad)

        def kernel(c_out: int, c_in: int) -> Tensor:
            k = config.kernel_size
            t = torch.randn(c_out, c_in, k, k, dtype=torch.bfloat16)
            return t.contiguous(memory_format=torch.channels_last).requires_grad_()

        calls = []  # (input, weight): every convolution of one forward pass
        in_dims = [config.input_dim, *config.hidden_dims[:-1]]
        for layer, (c_in, c_hid) in enumerate(zip(in_dims, config.hidden_dims, strict=True)):
            # The input half for all steps at once; the data (layer 0) needs no gradient.
            calls.append((frames(config.batch * config.steps, c_in, grad=layer > 0),
                          kernel(4 * c_hid, c_in)))  # fmt: skip
            # The recurrent half, for every step after the first.
            for _ in range(config.steps - 1):
                calls.append((frames(config.batch, c_hid, grad=True), kernel(4 * c_hid, c_hid)))
        with torch.no_grad():
            grads = [torch.randn_like(F.conv2d(x, w, padding="same")) for x, w in calls]

        def train() -> None:
            for (x, w), grad in zip(calls, grads, strict=True):
                y = F.conv2d(x, w, padding="same")
                torch.autograd.grad(y, (x, w) if x.requires_grad else (w,), grad)

        def infer() -> None:
            with torch.inference_mode():
                for x, w in calls:
                    F.conv2d(x, w, padding="same")

        return train, infer

    return _Variant("bound: bf16 channels_last convolutions alone", make, skip_first_recurrent=True)


def _variants(*, compile_: bool, keras_: bool) -> list[_Variant]:
    reference = _torch_variant(
        "reference (cat conv, NCHW, fp32)",
        lambda c: ReferenceConvLSTM(c.input_dim, c.hidden_dims, c.kernel_size),
    )
    # (name, ConvLSTM switches, bf16 autocast?). Every library variant skips the recurrent
    # half of the first step, whose state is zeros.
    library: list[tuple[str, dict, bool]] = [
        ("library, every switch off", {"channels_last": False, "precompute_input": False}, False),
        ("channels_last only", {"channels_last": True, "precompute_input": False}, False),
        ("precompute_input in every layer", {"precompute_input": True}, False),
        ("library default (fp32)", {}, False),
        ("library default + autocast bf16", {}, True),
        ("default + channels_last + autocast bf16", {"channels_last": True}, True),
        ("precompute_input in every layer + autocast bf16", {"precompute_input": True}, True),
    ]
    if compile_:
        library += [
            ("torch.compile(default) (fp32)", {"compiled": True}, False),
            ("torch.compile(default) + autocast bf16", {"compiled": True}, True),
        ]
    variants = [reference]
    for name, options, bf16 in library:
        variants.append(
            _torch_variant(name, _library(**options), bf16=bf16, skip_first_recurrent=True)
        )
    variants.append(_bound_variant())
    if keras_:
        variants.append(_keras_variant())
    return variants


def run_benchmark(
    configs: list[Config],
    *,
    repeats: int = 3,
    compile_: bool = True,
    keras_: bool = True,
    peak_sizes: tuple[int, ...] = (1024, 2048, 4096),
    system_allocator: bool = False,
    progress: Callable[[str], None] = print,
) -> dict:
    """Time every variant on every config; return the results as a JSON-ready dict.

    Unless ``system_allocator``, the run holds :func:`convlstm_lib.keep_freed_memory` on, for
    every variant alike, and restores glibc's defaults when it is done if it turned it on.
    """
    was_kept = _memory_is_kept()
    kept = was_kept if system_allocator else keep_freed_memory()
    try:
        return _run(configs, repeats, compile_, keras_, peak_sizes, kept, progress)
    finally:
        if kept and not was_kept:
            keep_freed_memory(False)


def _run(
    configs: list[Config],
    repeats: int,
    compile_: bool,
    keras_: bool,
    peak_sizes: tuple[int, ...],
    kept: bool,
    progress: Callable[[str], None],
) -> dict:
    result = {
        "machine": {
            # When and where: the numbers mean nothing without the machine they came from.
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu_model": _cpu_model(),
            "cores": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "mkldnn_bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported(),
            "loadavg_start": os.getloadavg(),
            "allocator": "glibc, keep_freed_memory()" if kept else "system default",
        },
        "peak_gflops": {},
        "rows": [],
    }
    progress("measuring the matrix-product peaks")
    peaks = {name: dense_peak(dtype, peak_sizes) for name, dtype in _DTYPES.items()}
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
    progress("measuring the matrix-product peaks again")
    for name, dtype in _DTYPES.items():
        again = dense_peak(dtype, peak_sizes)
        peaks[name] = {kernel: max(gflops, again[kernel]) for kernel, gflops in peaks[name].items()}
    result["peak_gflops"] = {dtype: measured["peak"] for dtype, measured in peaks.items()}
    result["peak_measurements"] = peaks
    return result


def results_table(result: dict) -> str:
    """The results as a Markdown table, one row per config, variant and kind."""
    peak, machine = result["peak_gflops"], result["machine"]
    measured = "; ".join(
        f"{name}: " + ", ".join(f"{kernel} {gflops:.0f}" for kernel, gflops in kernels.items()
                                if kernel != "peak")
        for name, kernels in result["peak_measurements"].items()
    )  # fmt: skip
    summary = (
        f"Measured on {machine['date']} on {machine['cpu_model']} ({machine['cores']} cores), "
        f"torch {machine['torch']}. "
        f"Dense matrix-product peak measured in this run: fp32 {peak['fp32']:.0f} GFLOP/s, "
        f"bf16 {peak['bf16']:.0f} GFLOP/s, the best of ({measured}). Load average (1 min) at "
        f"start {machine['loadavg_start'][0]:.2f}, at end {machine['loadavg_end'][0]:.2f}, on "
        f"{machine['threads']} threads; allocator: {machine['allocator']}."
    )
    header = ["config", "variant", "step", "ms/step (median)", "speedup vs reference"]
    header += ["GFLOP/s", "% of bf16 peak"]
    rows = [
        (
            row["config"]["name"],
            row["variant"],
            row["kind"],
            f"{row['ms']:.1f}",
            f"{row['speedup']:.2f}x",
            f"{row['gflops']:.0f}",
            f"{100 * row['gflops'] / peak['bf16']:.0f}%",
        )
        for row in result["rows"]
    ]
    table = markdown_table(header, rows, align="lll" + "r" * 4)
    return f"{summary}\n\n{table}\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per variant")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--no-keras", action="store_true", help="skip keras.layers.ConvLSTM2D")
    parser.add_argument(
        "--system-allocator",
        action="store_true",
        help="keep glibc's default allocator settings (no keep_freed_memory)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where bench.md/.json go")
    args = parser.parse_args(argv)
    configs = TINY_CONFIGS if args.tiny else CONFIGS
    repeats = args.repeats or (2 if args.tiny else 5)
    result = run_benchmark(
        configs,
        repeats=repeats,
        compile_=not (args.tiny or args.no_compile),
        keras_=not args.no_keras,
        peak_sizes=(256, 512) if args.tiny else (1024, 2048, 4096),
        system_allocator=args.system_allocator,
    )
    table = results_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.md").write_text(table)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    print(table)
    return result


if __name__ == "__main__":
    main()
