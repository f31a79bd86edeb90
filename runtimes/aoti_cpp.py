"""``aoti-cpp``: an AOTInductor ``.pt2`` package run and timed in the native C++ runner of ``libtorch-cpp``
(``runtimes/cpp/main.cpp`` loads it with ``torch::inductor::AOTIModelPackageLoader``), so the Python and the C++
loader of one package can be compared as TorchScript's are.
"""

from __future__ import annotations

import numpy as np

from runtimes.aoti import census_of_package, isa_problem
from runtimes.kernels import KernelCensus
from runtimes.libtorch_cpp import LibtorchCppRuntime
from runtimes.manifest import ArtifactRecord, Format
from runtimes.protocol import Support, register_runtime

ONLY_PT2 = "aoti-cpp runs .pt2 (AOTInductor) packages only"


@register_runtime
class AotiCppRuntime(LibtorchCppRuntime):
    """An AOTInductor ``.pt2`` package in the same native C++ process (``AOTIModelPackageLoader``)."""

    name = "aoti-cpp"
    formats = (Format.PT2,)
    format_reason = ONLY_PT2

    def supports(self, artifact: ArtifactRecord) -> Support:
        support = super().supports(artifact)
        if support.ok and artifact.compile is not None:
            problem = isa_problem(artifact.compile.isa)
            if problem:
                return Support.no(problem)
        return support

    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        if self._model is None:
            raise RuntimeError(f"{self.name}: call load() first")
        return census_of_package(self._model, self.name)
