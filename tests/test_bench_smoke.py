"""A smoke run of the benchmark with tiny sizes: it runs, and what it writes is well formed."""

import json

import pytest

from benchmarks.run import CONFIGS, Config, ReferenceConvLSTM, conv_flops, main
from convlstm_lib.allocator import _glibc

GLIBC = _glibc() is not None

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_flop_count_is_the_documented_formula():
    config = Config("t", batch=2, steps=3, input_dim=1, hidden_dims=(4, 1), kernel_size=3, size=5)
    per_pixel = 2 * 2 * 5 * 5 * 9
    layer0 = per_pixel * 4 * 4 * (1 + 4)
    layer1 = per_pixel * 4 * 1 * (4 + 1)
    assert conv_flops(config, skip_first_recurrent=False) == 3 * (layer0 + layer1)
    skipped = per_pixel * 4 * 4 * 4 + per_pixel * 4 * 1 * 1
    assert conv_flops(config, skip_first_recurrent=True) == 3 * (layer0 + layer1) - skipped


def test_the_post_configuration_is_benchmarked():
    beam = next(c for c in CONFIGS if c.name == "beam")
    assert (beam.batch, beam.steps, beam.input_dim, beam.hidden_dims) == (100, 5, 1, (64, 1))
    assert (beam.kernel_size, beam.size) == (3, 24)


def test_reference_is_the_library_model(tmp_path):
    import torch

    from convlstm_lib import ConvLSTM

    reference = ReferenceConvLSTM(1, (4, 1), 3)
    model = ConvLSTM(1, [4, 1], 3)
    with torch.no_grad():
        for conv, cell in zip(reference.convs, model.cells, strict=True):
            cell.conv.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 1, 6, 6)
    torch.testing.assert_close(model(x)[1][-1][0], reference(x), rtol=1e-5, atol=1e-5)


def test_tiny_run_writes_table_and_json(tmp_path):
    result = main(["--tiny", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "bench.json").read_text())
    table = (tmp_path / "bench.md").read_text()
    assert written == json.loads(json.dumps(result))
    variants = {row["variant"] for row in written["rows"]}
    assert "reference (cat conv, NCHW, fp32)" in variants
    assert any(v.startswith("keras") for v in variants)
    for row in written["rows"]:
        assert row["ms"] > 0 and row["gflops"] > 0
        assert row["variant"] in table
    reference = [r for r in written["rows"] if r["variant"].startswith("reference")]
    assert all(r["speedup"] == 1.0 for r in reference)
    for dtype in ("fp32", "bf16"):
        measurements = written["peak_measurements"][dtype]
        assert written["peak_gflops"][dtype] == measurements["peak"] > 0
        assert measurements["peak"] == max(v for k, v in measurements.items() if k != "peak")
    # The ceiling row is credited with the library's work: the same convolutions, nothing else.
    rows = {(r["variant"], r["kind"]): r for r in written["rows"]}
    bound = rows["bound: bf16 channels_last convolutions alone", "train"]
    default = rows["library default (fp32)", "train"]
    assert bound["gflops"] * bound["ms"] == pytest.approx(default["gflops"] * default["ms"])
    assert written["machine"]["allocator"] == "glibc, keep_freed_memory()" or not GLIBC


@pytest.mark.skipif(not GLIBC, reason="keep_freed_memory is glibc's")
def test_run_leaves_the_allocator_as_it_found_it():
    from benchmarks.run import run_benchmark
    from convlstm_lib import keep_freed_memory
    from convlstm_lib.allocator import _memory_is_kept

    def run():  # no configs: only the peak measurements, in a fraction of a second
        return run_benchmark([], compile_=False, keras_=False, peak_sizes=(64,), progress=str)

    assert run()["machine"]["allocator"] == "glibc, keep_freed_memory()"
    assert not _memory_is_kept()  # turned on for the run, then off again
    keep_freed_memory()
    run()
    assert _memory_is_kept()  # the caller's setting survives
