"""convlstm_lib: the convolutional LSTM behind the book, small enough to read in one sitting.

* :class:`ConvLSTMCell`: one step of one layer (``cell.py``).
* :class:`ConvLSTM`: a stack of cells run over layers and time (``model.py``).
"""

from .cell import ConvLSTMCell
from .model import ConvLSTM

__all__ = ["ConvLSTM", "ConvLSTMCell"]

__version__ = "0.1.0"
