"""The deployment target of the run's INT8 artifacts, and whether the bench CPU is one of its class.

An artifact built for ``x86-vnni`` (8-bit activations) is exact wherever the CPU has VNNI or AMX, and in ONNX
Runtime and OpenVINO anywhere; in fbgemm on an older x86 CPU its int16 pair sums may saturate. The section says
which target the run built for and, when the bench machine is outside that class, warns with the rebuild command.
"""

from __future__ import annotations

from exporter.report.context import ReportContext
from exporter.report.sections import register_section
from runtimes.errors import BadInputError
from runtimes.targets import OLDER_X86, get_target


@register_section("target", order=47)
def target_section(ctx: ReportContext) -> str:
    if ctx.manifest is None:
        return ""
    names = sorted({a.quantization.target for a in ctx.manifest.artifacts if a.quantization.target})
    if not names:
        return ""
    lines = ["## Deployment target", ""]
    for name in names:
        try:
            target = get_target(name)
        except BadInputError:
            lines.append(f"- `{name}`: not a target this shrinkwrap knows; its artifacts were built elsewhere.")
            continue
        lines.append(f"- INT8 artifacts built for **`--target {name}`**: {target.title}; activations in "
                     f"{target.activation_bits} bits.")
        fitted_here = sorted({a.variant for a in ctx.manifest.artifacts if a.quantization.target == name
                              and a.quantization.bias_correction is not None
                              and a.quantization.bias_correction.outside_target})
        if fitted_here:
            lines.append(f"- ⚠ The bias correction of {', '.join(fitted_here)} ran on a build CPU outside that class: "
                         f"its shifts absorb that CPU's saturation, and every file carries them, ONNX included. "
                         f"Rebuild on a CPU of the class, or with `--target native` for the build CPU's own.")
        risk = target.risk_on(ctx.results.environment.cpu_flags)
        if risk:
            lines.append(f"- ⚠ This benchmark's CPU is outside that class: {risk}. ONNX files are not affected "
                         f"(ONNX Runtime and OpenVINO do not use fbgemm's int16 pairs).")
        elif target.exact_on:
            has = [f for f in target.exact_on if f in ctx.results.environment.cpu_flags]
            lines.append(f"- This benchmark's CPU has {', '.join(has)}: "
                         f"the TorchScript INT8 timings and outputs are those of the target class. For x86 CPUs "
                         f"without VNNI, rebuild with `--target {OLDER_X86}` (7-bit activations).")
    return "\n".join(lines) + "\n"
