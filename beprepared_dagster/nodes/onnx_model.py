"""Base of the nodes that run an ONNX model through onnxruntime (WDTagger, NudeNet)."""

from __future__ import annotations

from typing import ClassVar

from beprepared_dagster.models.api import DeviceSettings
from beprepared_dagster.nodes.model import ModelNode


class OnnxModelNode(ModelNode):
    """Where `devices=` is not given, the stage runs on every visible GPU only when the installed onnxruntime
    has a CUDA provider (`onnxruntime-gpu`); with the plain `onnxruntime` package it runs on the CPU, in this
    process, without looking for GPUs (so without importing torch)."""

    default_batch_size: ClassVar[int] = 32

    @property
    def device_settings(self) -> DeviceSettings:
        settings = self._device_settings
        if settings.devices is None:
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return DeviceSettings(("cpu",), settings.dtype, settings.quantize)
        return settings

    @device_settings.setter
    def device_settings(self, settings: DeviceSettings) -> None:
        self._device_settings = settings
