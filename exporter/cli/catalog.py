"""``variants``, ``models``, ``runtimes``: the registries, as tables."""

from __future__ import annotations

from rich.table import Table

from exporter.cli.app import app, cli_errors, out_console


@app.command()
@cli_errors
def variants() -> None:
    """List the registered variants."""
    from exporter.variants import all_variants

    table = Table("name", "precision", "builder", "prune", "formats", "role", "default", "description")
    for v in all_variants():
        table.add_row(v.name, v.precision.value, v.builder, "yes" if v.prunes else "no", ",".join(v.formats),
                      v.role.value, "yes" if v.default else "", v.description)
    out_console.print(table)


@app.command()
@cli_errors
def models() -> None:
    """List torchvision's classifiers: family, INT8 lane and default input size."""
    from runtimes.architectures import model_specs
    from runtimes.quant_lanes import lane_named

    table = Table("model", "family", "INT8 lane", "input", "resize", "ImageNet weights", "why no INT8 lane")
    for m in model_specs():
        lane = lane_named(m.quant_lane).title if m.quant_lane else "none (float variants only)"
        table.add_row(m.name, m.family, lane, str(m.preprocess.crop), str(m.preprocess.resize), m.weights,
                      m.no_lane_reason or "")
    out_console.print(table)


@app.command("runtimes")
@cli_errors
def runtimes_() -> None:
    """List the registered runtimes: device, formats, reference role and capabilities."""
    from runtimes import registry

    table = Table("runtime", "device", "formats", "reference for", "framework", "capabilities", "description")
    for s in registry.specs():
        table.add_row(s.name, s.device, ",".join(s.formats), ",".join(s.reference_for) or "-", s.framework,
                      ",".join(s.capabilities), s.description)
    out_console.print(table)
