"""Top-1 accuracy of FP32 and INT8 on real data, both run in pyrt (onnxruntime's INT8 beside).

    python bench/accuracy.py --dataset digits --json out.json

digits: scikit-learn's load_digits, the split of tools/train_digits.py. The test split
is written as PNG files, the committed FP32 model (tests/data/digits_cnn.onnx) is
quantized by `pyrt.quantize` from an XSlim config whose data list names PNGs of the
training split, and both models run on the test PNGs as the config reads them.
Records {"dataset", "n", "fp32_top1", "int8_top1", "ort_int8_top1", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import pyrt  # noqa: E402
from pyrt.quant_config import CALIBRATION_TYPES  # noqa: E402
from pyrt.quantize import analysis_samples  # noqa: E402

DIGITS_MODEL = ROOT / "tests" / "data" / "digits_cnn.onnx"


def write_pngs(images: np.ndarray, folder: Path, list_name: str) -> Path:
    """One grayscale PNG per image and a list file naming them (relative to its folder)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        name = f"{list_name}_{i:04d}.png"
        Image.fromarray(img).save(folder / name)
        names.append(name)
    listing = folder / f"{list_name}.txt"
    listing.write_text("\n".join(names) + "\n")
    return listing


def digits_config(calib_list: Path, samples: int, calibration_type: str = "default") -> dict:
    """The XSlim config a user writes for this model and data."""
    return {
        "model_parameters": {"onnx_model": str(DIGITS_MODEL)},
        "calibration_parameters": {
            "calibration_step": samples,
            "calibration_type": calibration_type,
            "input_parametres": [
                {
                    "file_type": "img",
                    "mean_value": [0.0],
                    "std_value": [255.0],
                    "data_list_path": str(calib_list),
                }
            ],
        },
        "quantization_parameters": {"analysis_enable": False},
    }


def top1(session_run, x: np.ndarray, y: np.ndarray) -> float:
    logits = session_run(x)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def run_digits(work: Path, calib_samples: int = 64, calibration_type: str = "default") -> dict:
    import onnxruntime as ort
    from train_digits import digits_split

    x_train, _, x_test, y_test = digits_split()
    calib_list = write_pngs(x_train[:calib_samples], work / "calib", "calib")
    test_list = write_pngs(x_test, work / "test", "test")
    config = digits_config(calib_list, calib_samples, calibration_type)
    result = pyrt.quantize(config, output=work / "digits_cnn.q.onnx", progress=False)

    # The test images, read exactly as the config reads the calibration images.
    test_config = digits_config(test_list, len(y_test))
    samples = analysis_samples(DIGITS_MODEL, [], test_config, len(y_test))
    x = np.concatenate([s["input"] for s in samples])

    fp32 = pyrt.Session(DIGITS_MODEL)
    int8 = pyrt.Session(result.output)
    ort_int8 = ort.InferenceSession(str(result.output), providers=["CPUExecutionProvider"])
    return {
        "dataset": "digits",
        "n": int(len(y_test)),
        "fp32_top1": top1(lambda a: fp32.run({"input": a})[0], x, y_test),
        "int8_top1": top1(lambda a: int8.run({"input": a})[0], x, y_test),
        "ort_int8_top1": top1(lambda a: ort_int8.run(None, {"input": a})[0], x, y_test),
        "calibration_samples": calib_samples,
        "calibration_type": config["calibration_parameters"]["calibration_type"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits"], default="digits")
    parser.add_argument("--json", type=Path, help="write the record here")
    parser.add_argument("--calib-samples", type=int, default=64)
    parser.add_argument(
        "--calibration-type", default="default", choices=CALIBRATION_TYPES, help="as in the config"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        record = run_digits(Path(tmp), args.calib_samples, args.calibration_type)
    print(
        f"{record['dataset']}: n={record['n']}  fp32 top-1 {100 * record['fp32_top1']:.2f}%  "
        f"int8 top-1 {100 * record['int8_top1']:.2f}% (pyrt)  "
        f"{100 * record['ort_int8_top1']:.2f}% (onnxruntime)"
    )
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
