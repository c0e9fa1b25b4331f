"""One detector network on ONNX Runtime, shared by the detectors that run ONNX files (MTCNN, BlazeFace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["OnnxNet"]


class OnnxNet:
    """A network on ONNX Runtime with its outputs requested by name, so their order cannot get mixed up."""

    def __init__(self, path: str | Path, outputs: list[str], num_threads: int = 0, spin: bool = False) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = num_threads
        # No busy-waiting between runs: detectors make many small calls (MTCNN: one per pyramid scale and
        # stage), and ONNX Runtime's default spinning threads then hold the cores that the next stage, the other
        # nets and the age network need: the whole pipeline ran 18.1 -> 39.1 photos/s
        # (benchmarks/results/detectors.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.outputs = outputs
        missing = set(outputs) - {o.name for o in self._session.get_outputs()}
        if missing:
            raise ValueError(f"{path} has no outputs {sorted(missing)}")
        # Each run hands the memory it no longer uses back: ONNX Runtime's arena otherwise keeps its largest
        # blocks for good (P-net's input is the whole photo at search size; two threads searching 6000x6000
        # photos left the process ~850 MB larger). Shrinking only after large inputs kept ~230 MB of it:
        # blocks still in use by the other thread's run survive a shrink. No slower measured (a 512 px and a
        # 1200 px photo, 7 interleaved repeats, under load).
        self._options = ort.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        # asarray: an input already float32 (every caller's) is not copied; astype copied every one of them
        return self._session.run(self.outputs, {self._input: np.asarray(batch, np.float32)}, self._options)
