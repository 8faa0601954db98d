"""pyrt's exceptions. All are ValueErrors, so `except ValueError` catches them too."""


class PyrtError(ValueError):
    """Base of every error pyrt raises on purpose."""


class ModelError(PyrtError):
    """The model is malformed or breaks the ONNX spec (names the node and field)."""


class UnsupportedOpError(ModelError):
    """The model uses operators pyrt cannot run (all of them are listed)."""


class InputError(PyrtError):
    """An input given to run() does not match what the model declares."""


class KernelError(PyrtError):
    """A C kernel refused its arguments (message from pyrt_last_error)."""


class ConfigError(PyrtError):
    """A quantization config (or its data) is wrong (names the field and what was expected)."""
