"""pyrt: int8 inference for QDQ ONNX models on x86 and RISC-V.

import pyrt
outputs = pyrt.run("model.onnx", {"input": x})      # one call
session = pyrt.Session("model.onnx")                 # compile once, run many
print(session.report())                              # which nodes run int8
print(pyrt.check("model.onnx", {"input": x}))        # compare with onnxruntime
result = pyrt.quantize("cfg.json")                   # FP32 + XSlim config -> INT8 QDQ
"""

from . import analyze
from .check import CheckReport, OutputCheck, check
from .errors import (
    ConfigError,
    InputError,
    KernelError,
    ModelError,
    PyrtError,
    UnsupportedOpError,
)
from .quantize import QuantizeResult, quantize
from .session import NodeReport, Report, Session, TensorSpec, run

__version__ = "0.1.0"

__all__ = [
    "run",
    "Session",
    "TensorSpec",
    "Report",
    "NodeReport",
    "check",
    "CheckReport",
    "OutputCheck",
    "quantize",
    "analyze",
    "QuantizeResult",
    "PyrtError",
    "ModelError",
    "UnsupportedOpError",
    "InputError",
    "KernelError",
    "ConfigError",
]
