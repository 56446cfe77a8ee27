"""int8 inference on x86 CPUs (``--dtype int8``): a float model quantized on its first call.

Weights are quantized per output channel, activations per tensor, with ranges observed on the first item of
the first call (the clip's own frames or faces, not a fixed calibration set). Modules named in ``keep_float``
stay float32 (e.g. S3FD's L2 norms, whose squared sums need the range). On CPUs with int8 dot-product units
(VNNI) the quantized convolutions beat bfloat16 and float32 (speed-ups in ``docs/notes.md``); the numerical
cost per model is bounded in ``tests/models/test_cpu_int8.py``.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

#: PyTorch's quantized engine used here (FBGEMM and oneDNN kernels chosen per shape).
ENGINE = "x86"


def engine_available() -> bool:
    """Whether this PyTorch build has the x86 quantized engine."""
    return ENGINE in torch.backends.quantized.supported_engines


class Int8OnFirstCall(nn.Module):
    """Runs ``module`` quantized to int8; the conversion (trace, observe, convert) happens on the first call.

    The first call's first item calibrates the activation ranges, so one slow float forward of one item is
    paid once per loaded model (a batch worker reuses the converted model for every later job).
    """

    def __init__(self, module: nn.Module, keep_float: tuple[type[nn.Module], ...] = ()) -> None:
        super().__init__()
        self.float_module: nn.Module | None = module
        self.keep_float = keep_float
        self.quantized: nn.Module | None = None

    def forward(self, *args: torch.Tensor):
        if self.quantized is None:
            self.quantized = self._convert(tuple(a[:1] for a in args))
            self.float_module = None  # the float weights are no longer needed
        with warnings.catch_warnings():
            # A concatenation of differently scaled tensors is requantized to one scale: the rounding that costs
            # is inside the bound measured for each model, so the kernel's generic notice is not for our users.
            warnings.filterwarnings("ignore", message="All inputs of this cat operator must share")
            return self.quantized(*args)

    def _convert(self, sample: tuple[torch.Tensor, ...]) -> nn.Module:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        assert self.float_module is not None  # converted on the first call, before the float module is dropped
        torch.backends.quantized.engine = ENGINE
        qconfig = get_default_qconfig_mapping(ENGINE)
        for cls in self.keep_float:
            qconfig = qconfig.set_object_type(cls, None)
        with warnings.catch_warnings():  # torch.ao's notices about its own future; nothing for our users to act on
            warnings.simplefilter("ignore")
            prepared = prepare_fx(copy.deepcopy(self.float_module), qconfig, sample,
                                  prepare_custom_config={"non_traceable_module_classes": list(self.keep_float)})
            prepared(*sample)
            converted = convert_fx(prepared)
        for node in converted.graph.nodes:  # in-place activations have no int8 kernel (each call would warn)
            if node.kwargs.get("inplace"):
                node.kwargs = {**node.kwargs, "inplace": False}
        converted.recompile()
        return converted.eval()
