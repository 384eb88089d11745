"""convlstm_lib: the convolutional LSTM behind the book, small enough to read in one sitting.

* :class:`ConvLSTMCell`: one step of one layer, and :class:`CellStep`, what its public
  :meth:`~ConvLSTMCell.step` returns, the gates included (``cell.py``).
* :class:`ConvLSTM`: a stack of cells run over layers and time, with its speed switches and
  the rules its ``None`` switches follow, :func:`default_channels_last` and
  :func:`precomputes_input` (``model.py``).
* :class:`EncoderForecaster`, :func:`to_patches`, :func:`from_patches`: many-frame forecasts
  (``forecaster.py``); :func:`make_moving_mnist`,
  :func:`mnist_digits` (``digits.py``); :func:`persistence`,
  :class:`FCLSTM`, :func:`frame_mse`, :func:`frame_ssim`, :func:`frame_cross_entropy`
  (``baselines.py``); :func:`bootstrap_interval`, :class:`Interval`: intervals over held-out
  sequences, and :func:`block_bootstrap_indices` over overlapping start times (``stats.py``).
* :func:`load_radar`, :class:`RadarEvent`, :func:`read_frames`: real radar rain and grids of
  your own; :func:`split_by_event`, :func:`window_starts`, :func:`tile_corners`: held-out
  events, windows and tiles; :func:`rain_to_dbr`, :func:`dbr_to_rain`, :func:`encode_rain`, :func:`decode_rain`;
  :func:`residual_forecast`, :func:`nowcast_rain`: a ConvLSTM's rain forecast; :func:`nowcast_counts`,
  :func:`score_nowcasts`: pysteps' scores by lead time with intervals (``radar.py``).
* :func:`make_beam_movies`, :func:`next_frame_dataset`, :func:`next_frame_loader`: the post's
  diagonal-beam movies and the next-frame task; :func:`beam_lane` and :func:`all_beam_movies`,
  their train and test splits; :func:`make_moving_shapes` and :func:`move_shape`, random strokes
  and any drawing moving at any velocity; :func:`nearest_distance`, how far a held-out set lies
  from the training data (``data.py``).
* :class:`InsideStep`, :func:`inside_view`, :func:`export_inside_step`: every gate and state of a
  trained predictor, step by step, and its ONNX export for the page that runs it;
  :func:`reach_per_frame`, how fast a motion a stack can follow (``explain.py``).
* :class:`NextFramePredictor`, :func:`fit`, :func:`evaluate`, :class:`FitHistory`: a readout for
  next-frame prediction and the training loop the chapters share, and
  :func:`native_autocast_dtype`, the low precision a device computes natively (``train.py``).
* :func:`book_file`: the files a chapter loads (checkpoints, logs, data), from the clone or
  downloaded once, checked against their SHA-256 (``files.py``).
* :func:`keep_freed_memory`: a process-wide allocator setting that makes big CPU tensors cheap
  to allocate again (``allocator.py``); :func:`saved_tensor_bytes`: the memory autograd keeps
  for a backward pass, which ``checkpoint_steps=True`` cuts (``memory.py``).
* ``convlstm_lib.plot``: frame grids and animations, imported on its own so that the library
  itself does not need matplotlib.
"""

from .allocator import keep_freed_memory
from .baselines import FCLSTM, frame_cross_entropy, frame_mse, frame_ssim, persistence
from .cell import CellStep, ConvLSTMCell
from .data import (
    all_beam_movies,
    beam_lane,
    make_beam_movies,
    make_moving_shapes,
    move_shape,
    nearest_distance,
    next_frame_dataset,
    next_frame_loader,
)
from .digits import make_moving_mnist, mnist_digits
from .explain import InsideStep, export_inside_step, inside_view, reach_per_frame
from .files import book_file
from .forecaster import EncoderForecaster, from_patches, to_patches
from .memory import saved_tensor_bytes
from .model import ConvLSTM, default_channels_last, precomputes_input
from .radar import (
    RadarEvent,
    dbr_to_rain,
    decode_rain,
    encode_rain,
    load_radar,
    nowcast_counts,
    nowcast_rain,
    rain_to_dbr,
    read_frames,
    residual_forecast,
    score_nowcasts,
    split_by_event,
    tile_corners,
    window_starts,
)
from .stats import Interval, block_bootstrap_indices, bootstrap_interval
from .train import FitHistory, NextFramePredictor, evaluate, fit, native_autocast_dtype

__all__ = [
    "FCLSTM",
    "CellStep",
    "ConvLSTM",
    "ConvLSTMCell",
    "EncoderForecaster",
    "FitHistory",
    "InsideStep",
    "Interval",
    "NextFramePredictor",
    "RadarEvent",
    "all_beam_movies",
    "beam_lane",
    "block_bootstrap_indices",
    "book_file",
    "bootstrap_interval",
    "dbr_to_rain",
    "decode_rain",
    "default_channels_last",
    "encode_rain",
    "evaluate",
    "export_inside_step",
    "fit",
    "frame_cross_entropy",
    "frame_mse",
    "frame_ssim",
    "from_patches",
    "inside_view",
    "keep_freed_memory",
    "load_radar",
    "make_beam_movies",
    "make_moving_mnist",
    "make_moving_shapes",
    "mnist_digits",
    "move_shape",
    "native_autocast_dtype",
    "nearest_distance",
    "next_frame_dataset",
    "next_frame_loader",
    "nowcast_counts",
    "nowcast_rain",
    "persistence",
    "precomputes_input",
    "rain_to_dbr",
    "reach_per_frame",
    "read_frames",
    "residual_forecast",
    "saved_tensor_bytes",
    "score_nowcasts",
    "split_by_event",
    "tile_corners",
    "to_patches",
    "window_starts",
]

__version__ = "0.1.0"
