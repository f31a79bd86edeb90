"""The report's "Channel pruning" section: what each slim variant removed and what each recovery step
gave back, read from the manifest's records."""

from __future__ import annotations

from exporter.report.context import ReportContext
from exporter.report.sections import register_section
from runtimes.manifest import ArtifactRecord


def _first_per_variant(ctx: ReportContext, attr: str) -> list[ArtifactRecord]:
    if ctx.manifest is None:
        return []
    seen: dict[str, ArtifactRecord] = {}
    for a in ctx.manifest.artifacts:
        if getattr(a, attr) is not None and a.variant not in seen:
            seen[a.variant] = a
    return list(seen.values())


@register_section("channels", order=35)
def channel_pruning(ctx: ReportContext) -> str:
    slim = _first_per_variant(ctx, "channels")
    if not slim:
        return ""
    lines = ["## Channel pruning", "",
             "Recovery is measured without labels: top-1 agreement with the FP32 model and the logits' SQNR "
             "against it, on calibration images the reconstruction did not use.", ""]
    for a in slim:
        c = a.channels
        layers = len([layer for layer in c.layers if layer.kept < layer.total])
        lines += [f"### {a.variant}", "",
                  f"- {c.requested:g} of the output channels of {layers} layers removed ({c.criterion} importance, "
                  f"counts multiples of {c.round_to}); MACs per image {c.macs_before / 1e6:.1f}M → "
                  f"{c.macs_after / 1e6:.1f}M ({c.macs_before / max(c.macs_after, 1):.2f}× fewer), parameters "
                  f"{c.params_before / 1e6:.2f}M → {c.params_after / 1e6:.2f}M.", "",
                  "| Step | Agreement with FP32 % | SQNR dB | Seconds | Detail |", "|---|---:|---:|---:|---|"]
        lines += [f"| {s.step} | {s.agreement:.1f} | {s.sqnr_db:.1f} | {s.seconds:.1f} | {s.detail} |"
                  for s in c.recovery]
        lines.append("")
    tuned = _first_per_variant(ctx, "finetune")
    if tuned:
        f = tuned[0].finetune
        lines += [f"Distillation ({', '.join(a.variant for a in tuned)}): {f.epochs} epochs on {f.images} images of "
                  f"{f.data} (labels unused), batch {f.batch}, lr {f.lr:g}, T = {f.temperature:g}, seed {f.seed}, "
                  f"on {f.device}: {f.seconds:.0f} s, {f.images_per_s:.0f} images/s; KL loss "
                  f"{f.loss_first_epoch:.4f} (first epoch) → {f.loss_last_epoch:.4f} (last)."]
    return "\n".join(lines).rstrip()
